// embedlens point-cloud viewer: one WebGL draw call for every token of a large map, no library.
//
// Plotly's 3-D scatter takes ~23 s to draw 262,144 points in a software-WebGL browser; this viewer draws
// them in about 0.8 s. Data come from the JSON script element #embedlens-data
// (escaped by json_for_script on the Python side). Token strings are untrusted: they reach the page only
// through textContent, never innerHTML.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("embedlens-data").textContent);
  const $ = (id) => document.getElementById(id);

  function bytes(b64) {
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  const n = D.n;
  const three = D.dims === 3;
  const xyz = new Float32Array(bytes(D.xyz).buffer); // n x 3, centred and scaled into [-1, 1]
  const rgb = bytes(D.rgb); // n x 3
  const size = new Float32Array(bytes(D.size).buffer); // n, CSS pixels
  let maxSize = 0;
  for (let i = 0; i < n; i++) maxSize = Math.max(maxSize, size[i]);

  // ---- title, colour bar, help -------------------------------------------------------------------------
  $("title1").textContent = D.title[0];
  $("title2").textContent = D.title[1];
  if (D.colorbar) {
    $("cbar-title").textContent = D.colorbar.title;
    $("cbar-ramp").style.background = "linear-gradient(to top, " +
      D.colorbar.stops.map((s) => s[1] + " " + (100 * s[0]).toFixed(1) + "%").join(", ") + ")";
    for (const [pos, text] of D.colorbar.ticks) {
      const t = document.createElement("div");
      t.className = "tick";
      t.style.bottom = (100 * pos).toFixed(2) + "%";
      t.textContent = text;
      $("cbar-ticks").appendChild(t);
    }
  } else {
    $("cbar").style.display = "none";
    if (!D.legend) $("stage").classList.add("no-bar"); // the plot takes the colour bar's room
  }
  if (D.legend) { // categorical colours (writing systems): one swatch per class
    const title = document.createElement("div");
    title.textContent = "script";
    $("legend").appendChild(title);
    for (const [color, name] of D.legend) {
      const row = document.createElement("div");
      row.className = "legend-row";
      const sw = document.createElement("span");
      sw.className = "legend-swatch";
      sw.style.background = color;
      const label = document.createElement("span");
      label.textContent = name;
      row.appendChild(sw);
      row.appendChild(label);
      $("legend").appendChild(row);
    }
  }
  $("help").textContent = three
    ? "drag: rotate · shift+drag or right-drag: pan · wheel: zoom · double-click: reset"
    : "drag: pan · wheel: zoom · double-click: reset";

  // ---- WebGL ---------------------------------------------------------------------------------------------
  const canvas = $("canvas");
  const gl = canvas.getContext("webgl", { antialias: false, preserveDrawingBuffer: true });
  if (!gl) {
    $("status").textContent = "this browser has no WebGL: the map cannot be drawn (points.parquet holds the data)";
    document.documentElement.dataset.drawn = "error";
    return;
  }
  const VS = `
    attribute vec3 pos; attribute vec3 col; attribute float size;
    uniform mat4 mvp; uniform float scale; uniform vec3 tint; uniform float useTint;
    varying vec3 vcol;
    void main() {
      gl_Position = mvp * vec4(pos, 1.0);
      gl_PointSize = max(1.0, size * scale);
      vcol = mix(col, tint, useTint);
    }`;
  const FS = `
    precision mediump float; varying vec3 vcol; uniform float ring;
    void main() {
      vec2 c = gl_PointCoord * 2.0 - 1.0; float r = dot(c, c);
      if (r > 1.0 || (ring > 0.5 && r < 0.45)) discard;
      gl_FragColor = vec4(vcol, 1.0);
    }`;
  const LVS = `attribute vec3 pos; uniform mat4 mvp; void main() { gl_Position = mvp * vec4(pos, 1.0); }`;
  const LFS = `precision mediump float; void main() { gl_FragColor = vec4(0.72, 0.74, 0.78, 1.0); }`;

  function program(vs, fs) {
    const p = gl.createProgram();
    for (const [type, src] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
      const s = gl.createShader(type);
      gl.shaderSource(s, src);
      gl.compileShader(s);
      gl.attachShader(p, s);
    }
    gl.linkProgram(p);
    return p;
  }
  const P = program(VS, FS);
  const L = program(LVS, LFS);
  function buffer(data) {
    const b = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, b);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    return b;
  }
  const bufPos = buffer(xyz), bufCol = buffer(rgb), bufSize = buffer(size);
  // the bounding box (3-D only): 12 edges of the cube [-ex, ex] x [-ey, ey] x [-ez, ez]
  const E = D.extent;
  const corners = [];
  for (let i = 0; i < 8; i++) corners.push([(i & 1 ? 1 : -1) * E[0], (i & 2 ? 1 : -1) * E[1], (i & 4 ? 1 : -1) * E[2]]);
  const edges = [];
  for (let i = 0; i < 8; i++) for (const bit of [1, 2, 4]) if (!(i & bit)) edges.push(...corners[i], ...corners[i | bit]);
  const bufBox = buffer(new Float32Array(edges));
  const bufMark = gl.createBuffer(); // positions of highlighted points (search matches, hovered point)

  const loc = {
    pos: gl.getAttribLocation(P, "pos"), col: gl.getAttribLocation(P, "col"), size: gl.getAttribLocation(P, "size"),
    mvp: gl.getUniformLocation(P, "mvp"), scale: gl.getUniformLocation(P, "scale"),
    tint: gl.getUniformLocation(P, "tint"), useTint: gl.getUniformLocation(P, "useTint"),
    ring: gl.getUniformLocation(P, "ring"), lpos: gl.getAttribLocation(L, "pos"), lmvp: gl.getUniformLocation(L, "mvp"),
  };

  // ---- camera --------------------------------------------------------------------------------------------
  // the whole bounding box (its circumscribed sphere) fits the view at the start; FOV is the half-angle
  // of the narrower side of the window
  const FOV = 0.3;
  const DIST_MIN = 0.2, DIST_MAX = 40;
  const fitDist = 1.05 * Math.hypot(E[0], E[1], E[2]) / Math.sin(FOV);
  const home = { yaw: -0.6, pitch: 0.35, dist: Math.max(DIST_MIN, Math.min(DIST_MAX, fitDist)), panX: 0, panY: 0, zoom: 1 };
  const cam = Object.assign({}, home);
  let pointScale = 1;
  let mvp = new Float32Array(16);

  function mul(a, b) { // column-major 4x4: a * b
    const o = new Float32Array(16);
    for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      o[c * 4 + r] = s;
    }
    return o;
  }
  function focal(aspect) { return Math.min(1, aspect) / Math.tan(FOV); } // projection's y scale
  function matrix() {
    const w = canvas.clientWidth, h = canvas.clientHeight, aspect = w / Math.max(1, h);
    if (!three) { // orthographic: the unit square fills the shorter side at zoom 1
      const s = cam.zoom * 0.95, sx = s * Math.min(1, 1 / aspect), sy = s * Math.min(1, aspect);
      return new Float32Array([sx, 0, 0, 0, 0, sy, 0, 0, 0, 0, 1, 0, -cam.panX * sx, -cam.panY * sy, 0, 1]);
    }
    const cy = Math.cos(cam.yaw), sy = Math.sin(cam.yaw), cp = Math.cos(cam.pitch), sp = Math.sin(cam.pitch);
    const rotY = new Float32Array([cy, 0, -sy, 0, 0, 1, 0, 0, sy, 0, cy, 0, 0, 0, 0, 1]);
    const rotX = new Float32Array([1, 0, 0, 0, 0, cp, sp, 0, 0, -sp, cp, 0, 0, 0, 0, 1]);
    const view = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, -cam.panX, -cam.panY, -cam.dist, 1]);
    const f = focal(aspect), near = 0.05, far = 50;
    const proj = new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1,
      0, 0, 2 * far * near / (near - far), 0]);
    return mul(proj, mul(view, mul(rotX, rotY)));
  }

  let marks = new Float32Array(0), hovered = -1;
  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(canvas.clientWidth * dpr), h = Math.round(canvas.clientHeight * dpr);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    gl.viewport(0, 0, w, h);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    const next = matrix();
    if (next.some((v, k) => v !== mvp[k])) mvp = next; // same camera, same object: hover keeps its cache
    if (three) {
      gl.useProgram(L);
      gl.uniformMatrix4fv(loc.lmvp, false, mvp);
      gl.bindBuffer(gl.ARRAY_BUFFER, bufBox);
      gl.enableVertexAttribArray(loc.lpos);
      gl.vertexAttribPointer(loc.lpos, 3, gl.FLOAT, false, 0, 0);
      gl.drawArrays(gl.LINES, 0, edges.length / 3);
      gl.enable(gl.DEPTH_TEST);
    }
    gl.useProgram(P);
    gl.uniformMatrix4fv(loc.mvp, false, mvp);
    gl.uniform1f(loc.scale, pointScale * dpr);
    gl.uniform1f(loc.useTint, 0);
    gl.uniform1f(loc.ring, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, bufPos);
    gl.enableVertexAttribArray(loc.pos);
    gl.vertexAttribPointer(loc.pos, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, bufCol);
    gl.enableVertexAttribArray(loc.col);
    gl.vertexAttribPointer(loc.col, 3, gl.UNSIGNED_BYTE, true, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, bufSize);
    gl.enableVertexAttribArray(loc.size);
    gl.vertexAttribPointer(loc.size, 1, gl.FLOAT, false, 0, 0);
    gl.drawArrays(gl.POINTS, 0, n);
    gl.disable(gl.DEPTH_TEST);
    const pts = hovered >= 0 ? concat(marks, xyz.subarray(3 * hovered, 3 * hovered + 3)) : marks;
    if (pts.length) { // search matches and the hovered token: rings drawn over everything
      gl.disableVertexAttribArray(loc.col);
      gl.disableVertexAttribArray(loc.size);
      gl.vertexAttrib3f(loc.col, 0, 0, 0);
      gl.vertexAttrib1f(loc.size, 14);
      gl.bindBuffer(gl.ARRAY_BUFFER, bufMark);
      gl.bufferData(gl.ARRAY_BUFFER, pts, gl.DYNAMIC_DRAW);
      gl.vertexAttribPointer(loc.pos, 3, gl.FLOAT, false, 0, 0);
      gl.uniform1f(loc.scale, dpr);
      gl.uniform1f(loc.useTint, 1);
      gl.uniform1f(loc.ring, 1);
      gl.uniform3f(loc.tint, 0.86, 0.1, 0.15);
      gl.drawArrays(gl.POINTS, 0, pts.length / 3);
    }
    placeAxisNames();
    placeClusterLabels();
  }

  // ---- cluster labels: largest cluster first, each at its centre or close by, never overlapping ----------
  // The same greedy pass as embedlens.render.labels.place_labels: try a few positions around the
  // anchor, keep the first whose box overlaps no box placed so far and lies inside the canvas.
  const clusterDivs = (D.clusters || []).map((c) => {
    const el = document.createElement("div");
    el.className = "cluster-label";
    el.textContent = c.label;
    $("cluster-labels").appendChild(el);
    return el;
  });
  let clusterBoxes = [];
  function placeClusterLabels() {
    const W = canvas.clientWidth, H = canvas.clientHeight, placed = [];
    clusterBoxes = [];
    (D.clusters || []).forEach((c, i) => {
      const el = clusterDivs[i];
      const p = projectPoint(c.at);
      el.style.display = "block";
      const w = el.offsetWidth, h = el.offsetHeight;
      let box = null;
      if (p && p[2] >= -1 && p[2] <= 1) {
        for (const [dx, dy] of [[0, 0], [0, -1.05], [0, 1.05], [0.55, 0], [-0.55, 0]]) {
          const cx = p[0] + dx * w, cy = p[1] + dy * h;
          const b = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
          if (b[0] < 0 || b[1] < 0 || b[2] > W || b[3] > H) continue;
          if (placed.some((q) => q[0] < b[2] + 2 && b[0] < q[2] + 2 && q[1] < b[3] + 2 && b[1] < q[3] + 2)) continue;
          box = b;
          break;
        }
      }
      if (!box) { el.style.display = "none"; return; }
      placed.push(box);
      clusterBoxes.push({ id: c.id, box });
      el.style.left = box[0] + "px";
      el.style.top = box[1] + "px";
    });
  }
  function concat(a, b) { const o = new Float32Array(a.length + b.length); o.set(a); o.set(b, a.length); return o; }

  let pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  }

  function project(i, m) { return projectPoint(xyz.subarray(3 * i, 3 * i + 3), m); }

  function axisName(k, at, fixed) {
    let el = $("axis" + k);
    if (!el) {
      el = document.createElement("div");
      el.id = "axis" + k;
      el.className = "axis-name" + (!three && k === 1 ? " vertical" : "");
      el.textContent = D.axes[k];
      $("stage").appendChild(el);
    }
    const p = fixed || projectPoint(at);
    el.style.display = p ? "" : "none";
    if (p) { el.style.left = p[0] + "px"; el.style.top = p[1] + "px"; }
  }
  // [x, y] in CSS pixels and clip-space depth of v under matrix m (default: the current camera);
  // null behind the eye. screenPositions() repeats this inline: it runs once per point per camera.
  function projectPoint(v, m) {
    m = m || mvp;
    const cw = m[3] * v[0] + m[7] * v[1] + m[11] * v[2] + m[15];
    if (cw <= 0) return null;
    return [((m[0] * v[0] + m[4] * v[1] + m[8] * v[2] + m[12]) / cw + 1) / 2 * canvas.clientWidth,
      (1 - (m[1] * v[0] + m[5] * v[1] + m[9] * v[2] + m[13]) / cw) / 2 * canvas.clientHeight,
      (m[2] * v[0] + m[6] * v[1] + m[10] * v[2] + m[14]) / cw];
  }
  function placeAxisNames() {
    if (!three) { // 2-D: fixed titles under and beside the plot, as Plotly places them
      axisName(0, null, [canvas.clientWidth / 2, canvas.clientHeight - 12]);
      axisName(1, null, [14, canvas.clientHeight / 2]);
      return;
    }
    axisName(0, [E[0] * 1.08, -E[1], -E[2]]);
    axisName(1, [-E[0], E[1] * 1.08, -E[2]]);
    axisName(2, [-E[0], -E[1], E[2] * 1.08]);
  }

  // ---- hover: in 2-D the point nearest the cursor; in 3-D the front-most point whose disc is under it --
  // Screen positions are computed once per camera (one pass over the points), so moving the mouse over a
  // still map costs only a scan of two float arrays. Points the GPU clips (behind the near plane or
  // beyond the far one) cannot be picked.
  const tip = $("tip");
  let screen = null, screenFor = null;
  function screenPositions() {
    const m = mvp, W = canvas.clientWidth, H = canvas.clientHeight;
    if (screenFor && screenFor[0] === m && screenFor[1] === W && screenFor[2] === H) return screen;
    screen = screen || { x: new Float32Array(n), y: new Float32Array(n), z: new Float32Array(n) };
    for (let i = 0; i < n; i++) {
      const x = xyz[3 * i], y = xyz[3 * i + 1], z = xyz[3 * i + 2];
      const cw = m[3] * x + m[7] * y + m[11] * z + m[15];
      if (cw <= 0) { screen.x[i] = NaN; continue; }
      screen.x[i] = ((m[0] * x + m[4] * y + m[8] * z + m[12]) / cw + 1) / 2 * W;
      screen.y[i] = (1 - (m[1] * x + m[5] * y + m[9] * z + m[13]) / cw) / 2 * H;
      screen.z[i] = (m[2] * x + m[6] * y + m[10] * z + m[14]) / cw;
      if (screen.z[i] < -1 || screen.z[i] > 1) screen.x[i] = NaN;
    }
    screenFor = [m, W, H];
    return screen;
  }
  function nearest(mx, my) {
    const S = screenPositions(), R = Math.max(4, 2 + 0.5 * pointScale * maxSize);
    let best = -1, bestD = Infinity, bestZ = Infinity;
    for (let i = 0; i < n; i++) {
      const dx = S.x[i] - mx, dy = S.y[i] - my;
      if (!(dx * dx + dy * dy <= R * R)) continue; // NaN (behind the eye) fails too
      const d = dx * dx + dy * dy, r = Math.max(4, size[i] * pointScale * 0.5 + 2);
      if (d > r * r) continue;
      const cz = S.z[i];
      if (three ? cz < bestZ - 1e-6 || (Math.abs(cz - bestZ) <= 1e-6 && d < bestD) : d < bestD) {
        best = i; bestD = d; bestZ = cz;
      }
    }
    return best;
  }
  function showTip(i, mx, my) {
    hovered = i;
    if (i < 0) { tip.style.display = "none"; return; }
    $("tip-token").textContent = D.labels[i];
    $("tip-id").textContent = "id " + D.ids[i];
    $("tip-freq").textContent = D.freq ? "frequency " + D.freq[i].toLocaleString("en-US") : "";
    tip.style.display = "block";
    const W = canvas.clientWidth;
    tip.style.left = Math.min(mx + 14, W - tip.offsetWidth - 4) + "px";
    tip.style.top = (my + 14) + "px";
  }

  // ---- mouse -------------------------------------------------------------------------------------------
  let drag = null, hoverAt = null, hoverQueued = false;
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("mousedown", (e) => {
    drag = { x: e.clientX, y: e.clientY, pan: !three || e.shiftKey || e.button === 2, cam: Object.assign({}, cam) };
  });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (e) => {
    const r = canvas.getBoundingClientRect();
    if (drag) {
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (drag.pan) {
        // world units per pixel at the orbit centre: the map follows the mouse
        const k = three ? 2 * drag.cam.dist / (focal(r.width / Math.max(1, r.height)) * r.height)
          : 2 / (Math.min(r.width, r.height) * cam.zoom * 0.95);
        cam.panX = drag.cam.panX - dx * k;
        cam.panY = drag.cam.panY + dy * k;
      } else {
        cam.yaw = drag.cam.yaw + dx * 0.008;
        cam.pitch = Math.max(-1.55, Math.min(1.55, drag.cam.pitch + dy * 0.008));
      }
      showTip(-1);
      redraw();
      return;
    }
    if (e.target !== canvas) return;
    hoverAt = [e.clientX - r.left, e.clientY - r.top];
    if (hoverQueued) return;
    hoverQueued = true;
    requestAnimationFrame(() => {
      hoverQueued = false;
      const before = hovered;
      showTip(nearest(hoverAt[0], hoverAt[1]), hoverAt[0], hoverAt[1]);
      if (hovered !== before) draw();
    });
  });
  canvas.addEventListener("mouseleave", () => { if (hovered >= 0) { showTip(-1); draw(); } });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const f = Math.exp(e.deltaY * 0.0015);
    if (three) { cam.dist = Math.max(DIST_MIN, Math.min(DIST_MAX, cam.dist * f)); } else {
      const r = canvas.getBoundingClientRect(), s = Math.min(r.width, r.height) * 0.95 / 2;
      // keep the data point under the cursor where it is
      const mx = (e.clientX - r.left - r.width / 2) / s, my = -(e.clientY - r.top - r.height / 2) / s;
      const zoom = Math.max(0.2, Math.min(5000, cam.zoom / f));
      cam.panX += mx / cam.zoom - mx / zoom;
      cam.panY += my / cam.zoom - my / zoom;
      cam.zoom = zoom;
    }
    showTip(-1);
    redraw();
  }, { passive: false });
  canvas.addEventListener("dblclick", () => { Object.assign(cam, home); redraw(); });
  $("point-size").addEventListener("input", (e) => { pointScale = Number(e.target.value); redraw(); });
  $("png").addEventListener("click", () => {
    draw();
    const a = document.createElement("a");
    a.download = "map-view.png";
    a.href = canvas.toDataURL("image/png");
    a.click();
  });

  // ---- search: exact token first, then substring; matches drawn as rings -------------------------------
  const MAX_MARKS = 500;
  $("search").addEventListener("input", (e) => {
    const q = e.target.value;
    const found = [];
    if (q) {
      for (let i = 0; i < n && found.length < MAX_MARKS; i++) if (D.labels[i] === q) found.push(i);
      for (let i = 0; i < n && found.length < MAX_MARKS; i++) if (D.labels[i] !== q && D.labels[i].includes(q)) found.push(i);
    }
    marks = new Float32Array(found.length * 3);
    found.forEach((i, j) => marks.set(xyz.subarray(3 * i, 3 * i + 3), 3 * j));
    $("found").textContent = q ? (found.length >= MAX_MARKS ? MAX_MARKS + "+" : found.length) + " match" +
      (found.length === 1 ? "" : "es") : "";
    redraw();
  });

  window.addEventListener("resize", redraw);
  window.embedlensMap = { n, project: (i) => project(i, matrix()), draw, nearest, labels: D.labels,
    finish: () => gl.finish(), clusterBoxes: () => clusterBoxes.map((c) => ({ id: c.id, box: c.box.slice() })) };
  draw();
  gl.finish();
  document.documentElement.dataset.drawn = "1";
})();
