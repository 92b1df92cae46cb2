// embedlens map component: one WebGL draw call for every point of a map, labels that never overlap,
// density contours, box and lasso selection. A plain browser script (no modules, no CDN, no build step)
// that defines window.EmbedlensMap; the static map.html and the explorer both draw with it.
//
//   const map = EmbedlensMap.create(container, {
//     dims: 2 | 3, coords: Float32Array (n * dims, raw map units), display: string[] (readable tokens),
//     hover: (row) => string | string[] (tooltip lines; default display[row]), colors: Uint8Array n * 3 | null,
//     size: number | Float32Array (CSS px), order: Int32Array | null (2-D drawing order, later on top),
//     labels: {levels: [{name, assignment, labels, sizes}, ...], tokenPriority: rows | null} | null,
//     contours: false, background: "#fff", axes: [names] });
//   map.setCoords(coords, dims) · setColors · setSizes · setPointScale · setMask(Uint8Array | null: 0 = faint)
//   map.setOverlay(name, rows, {color, size, label}) · setLines(pairs, {color}) · setLabels · showLabels
//   map.showContours · setAxes · setTool("pan" | "box" | "lasso") · select(rows) · selected() -> Int32Array
//   map.on("select" | "hover" | "click", fn) · frame() · toPNG() -> data URL · destroy() · stats()
//   for tests and benchmarks: draw(quick) · panBy · zoomBy · setView({cx, cy, scale}) · transform() ·
//   project(row) · labelBoxes(). Labels are elements with class em-label and data-level (clusters,
//   sub-clusters, tokens, overlay); displaced ones get an SVG line.em-leader to their cluster's median.
//
// Token strings are untrusted: they reach the page only through textContent (and canvas fillText in a
// PNG), never innerHTML. Coordinates are raw map units; the component frames the bulk of the points
// (0.5-99.5% quantiles per axis plus a margin), so a few outliers do not shrink the map into a corner.
(function (global) {
  "use strict";
  const FONT_PX = 12, FONT = FONT_PX + "px system-ui, sans-serif", LABEL_PAD = 4, LABEL_H = FONT_PX + 6;
  const PLAIN = [0x3b, 0x6e, 0xa8];
  const SVG_NS = "http://www.w3.org/2000/svg"; // a name, never fetched
  const QUANTILE = 0.005, MARGIN = 0.06; // framing: the 0.5-99.5% box per axis plus 6% each side
  const LEVEL_STEP = 2.6; // zoom factor (from the framed view) at which the next label level takes over
  const MAX_TOKEN_LABELS = 400; // candidates looked at for the finest level (most important first)
  const TOKEN_LABEL_AREA = 9000;
  const LOD_POINTS = 40000; // points a slow renderer draws while a 3-D map turns // at most one token label per this many square CSS px of the canvas
  const CSS = `
.em-map { position: relative; overflow: hidden; user-select: none; -webkit-user-select: none; }
.em-map canvas { position: absolute; left: 0; top: 0; width: 100%; height: 100%; }
.em-map .em-gl { cursor: crosshair; }
.em-map svg.em-overlay { position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none; }
.em-map .em-labels { position: absolute; left: 0; top: 0; right: 0; bottom: 0; pointer-events: none; }
.em-label { position: absolute; box-sizing: border-box; white-space: pre; overflow: hidden; font: ${FONT};
  line-height: ${LABEL_H - 2}px; height: ${LABEL_H}px; padding: 0 ${LABEL_PAD - 1}px; border-radius: 3px;
  background: rgba(255,255,255,.82); border: 1px solid rgba(80,80,80,.45); color: #111; }
.em-label[data-level="tokens"] { background: rgba(255,255,255,.7); border-color: rgba(80,80,80,.2); color: #333; }
.em-label[data-level="overlay"] { border-color: rgba(214,39,40,.8); font-weight: 600; }
.em-tip { position: absolute; display: none; pointer-events: none; background: rgba(255,255,255,.96); z-index: 3;
  border: 1px solid #999; border-radius: 3px; padding: 4px 7px; box-shadow: 0 1px 4px rgba(0,0,0,.2); font: 12px system-ui, sans-serif; }
.em-axis { position: absolute; font: 12px system-ui, sans-serif; color: #555; pointer-events: none; transform: translate(-50%, -50%); white-space: pre; }
.em-axis.em-vertical { transform: translate(-50%, -50%) rotate(-90deg); }
.em-tip-main { font-family: monospace; font-size: 14px; white-space: pre; }
.em-tip-line { color: #444; white-space: pre; }
`;

  function addStyle() {
    if (document.getElementById("embedlens-map-style")) return;
    const s = document.createElement("style");
    s.id = "embedlens-map-style";
    s.textContent = CSS;
    document.head.appendChild(s);
  }
  function hexRGB(hex) {
    const h = String(hex || "#000").replace("#", "");
    const v = h.length === 3 ? h.split("").map((c) => c + c).join("") : h.padEnd(6, "0");
    return [0, 2, 4].map((i) => parseInt(v.slice(i, i + 2), 16) / 255);
  }
  function quantile(sorted, q) {
    if (!sorted.length) return 0;
    const p = q * (sorted.length - 1), i = Math.floor(p), f = p - i;
    return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
  }
  function median(values) { values.sort(); return quantile(values, 0.5); }
  // [lo, hi] of the bulk of one coordinate: quantiles of (at most 131,072 evenly strided) values
  function bulkRange(coords, dims, axis, n) {
    const step = Math.max(1, Math.floor(n / 131072)), m = Math.ceil(n / step), v = new Float64Array(m);
    let k = 0;
    for (let i = 0; i < n; i += step) { const x = coords[i * dims + axis]; if (Number.isFinite(x)) v[k++] = x; }
    const s = v.subarray(0, k).sort();
    return [quantile(s, QUANTILE), quantile(s, 1 - QUANTILE)];
  }

  function create(container, options) {
    addStyle();
    const opt = Object.assign({ dims: 2, display: [], colors: null, size: 4, labels: null, contours: false,
      background: "#fff", order: null }, options || {});
    container.classList.add("em-map");
    if (getComputedStyle(container).position === "static") container.style.position = "relative";
    container.style.background = opt.background;
    const el = (tag, cls, parent) => { const e = document.createElement(tag); if (cls) e.className = cls; (parent || container).appendChild(e); return e; };
    const contourCanvas = el("canvas", "em-contours");
    const canvas = el("canvas", "em-gl");
    const snapCanvas = el("canvas", "em-snapshot"); // the last full frame, moved while a gesture goes on
    snapCanvas.style.display = "none";
    snapCanvas.style.pointerEvents = "none";
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "em-overlay");
    container.appendChild(svg);
    const labelLayer = el("div", "em-labels");
    const tip = el("div", "em-tip");
    const gl = canvas.getContext("webgl", { antialias: false, preserveDrawingBuffer: true, alpha: true, premultipliedAlpha: false });
    const handlers = { select: [], hover: [], click: [] };
    const emit = (name, ...args) => handlers[name].forEach((f) => f(...args));
    const measure = document.createElement("canvas").getContext("2d");
    measure.font = FONT;

    // ---- state --------------------------------------------------------------------------------------------
    let n = 0, dims = 2, three = false, raw = null, norm = null, center = [0, 0, 0], unit = 1, extent = [1, 1, 1];
    let display = opt.display, hoverText = opt.hover || null, sizes = null, maxSize = 4, pointScale = 1;
    let colors = opt.colors, mask = null, order = opt.order;
    let labelSpec = null, anchors = [], tokenRows = null, labelsOn = true, contoursOn = !!opt.contours;
    let contour = null, tool = "pan", selection = new Uint8Array(0), hovered = -1, lines = null, lineColor = [0.5, 0.5, 0.5];
    const overlays = new Map(); // name -> {rows, color, size, label}
    const view = { cx: 0, cy: 0, scale: 1 }; // 2-D: data point at the canvas centre, CSS px per data unit
    let home2 = { cx: 0, cy: 0, scale: 1 };
    const cam = { yaw: -0.6, pitch: 0.35, dist: 3, panX: 0, panY: 0 }; // 3-D orbit, in normalised units
    let home3 = Object.assign({}, cam);
    const stat = { lastFrameMs: 0, frames: 0, labelsShown: 0, level: "", contourSegments: 0 };
    let shown = []; // labels placed in the last frame: {level, id, text, box, anchor, leader}

    // ---- WebGL --------------------------------------------------------------------------------------------
    const VS = `
      attribute vec3 pos; attribute vec4 col; attribute float size;
      uniform mat4 mvp; uniform float scale; uniform vec3 tint; uniform float useTint; uniform float pass; uniform vec3 bg;
      varying vec3 vcol;
      void main() {
        gl_Position = mvp * vec4(pos, 1.0);
        float off = step(0.5, col.a); // alpha holds the mask: filtered-out points are drawn faint
        if (pass > -0.5 && abs(off - pass) > 0.5) gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
        gl_PointSize = max(1.0, size * scale * (1.0 - 0.35 * off));
        vcol = mix(mix(col.rgb, tint, useTint), bg, 0.8 * off);
      }`;
    const FS = `
      precision mediump float; varying vec3 vcol; uniform float ring;
      void main() {
        vec2 c = gl_PointCoord * 2.0 - 1.0; float r = dot(c, c);
        if (r > 1.0 || (ring > 0.5 && r < 0.42)) discard;
        gl_FragColor = vec4(vcol, 1.0);
      }`;
    const LVS = "attribute vec3 pos; uniform mat4 mvp; void main() { gl_Position = mvp * vec4(pos, 1.0); }";
    const LFS = "precision mediump float; uniform vec3 color; void main() { gl_FragColor = vec4(color, 1.0); }";
    let P, L, loc, buf;
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
    if (gl) {
      P = program(VS, FS);
      L = program(LVS, LFS);
      loc = {};
      for (const a of ["pos", "col", "size"]) loc[a] = gl.getAttribLocation(P, a);
      for (const u of ["mvp", "scale", "tint", "useTint", "ring", "pass", "bg"]) loc[u] = gl.getUniformLocation(P, u);
      loc.lpos = gl.getAttribLocation(L, "pos");
      loc.lmvp = gl.getUniformLocation(L, "mvp");
      loc.lcolor = gl.getUniformLocation(L, "color");
      buf = { pos: gl.createBuffer(), col: gl.createBuffer(), size: gl.createBuffer(),
        box: gl.createBuffer(), mark: gl.createBuffer(), lines: gl.createBuffer() };
    } else {
      const msg = el("div", "em-error");
      msg.textContent = "this browser has no WebGL: the map cannot be drawn";
    }
    function upload(b, data) { gl.bindBuffer(gl.ARRAY_BUFFER, b); gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW); }
    // GL buffers hold the points in draw order (later points on top); every API speaks of rows
    // In 3-D the depth test decides what lies on top, so the points go in an interleaved order whose first
    // LOD_POINTS form an even sample of the map: a slow renderer draws only those while the map turns.
    let lodOrder = null;
    function drawOrder() {
      if (three) return lodOrder;
      return order && order.length === n ? order : null;
    }
    function interleaved() {
      if (!three || n <= LOD_POINTS) return null;
      const stride = Math.ceil(n / LOD_POINTS), out = new Int32Array(n);
      let k = 0;
      for (let start = 0; start < stride; start++) for (let i = start; i < n; i += stride) out[k++] = i;
      return out;
    }
    function inDrawOrder(src, width, Type) {
      const o = drawOrder();
      if (!o) return src;
      const out = new Type(n * width);
      for (let j = 0; j < n; j++) for (let k = 0; k < width; k++) out[j * width + k] = src[o[j] * width + k];
      return out;
    }
    // colour and mask in one 4-byte attribute (RGB + filtered-out flag): software WebGL (SwiftShader)
    // converts 3- and 1-byte vertex formats on every draw, which cost more than drawing the points
    function uploadColors() {
      if (!gl) return;
      const plain = !colors || colors.length !== 3 * n, rgba = new Uint8Array(4 * n);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < 3; k++) rgba[4 * i + k] = plain ? PLAIN[k] : colors[3 * i + k];
        rgba[4 * i + 3] = mask && !mask[i] ? 255 : 0;
      }
      upload(buf.col, inDrawOrder(rgba, 4, Uint8Array));
    }
    const uploadMask = uploadColors;
    function uploadSizes(size) {
      sizes = new Float32Array(n);
      if (typeof size === "number") sizes.fill(size); else sizes.set(size.subarray ? size.subarray(0, n) : size.slice(0, n));
      maxSize = 0;
      for (let i = 0; i < n; i++) maxSize = Math.max(maxSize, sizes[i]);
      if (gl) upload(buf.size, inDrawOrder(sizes, 1, Float32Array));
    }

    // ---- coordinates and framing -----------------------------------------------------------------------------
    function setCoords(coords, d) {
      dims = d || opt.dims || 2;
      three = dims === 3;
      raw = coords instanceof Float32Array ? coords : Float32Array.from(coords);
      n = Math.floor(raw.length / dims);
      const bulk = [];
      for (let k = 0; k < 3; k++) bulk.push(k < dims && n ? bulkRange(raw, dims, k, n) : [0, 0]);
      // an axis with no spread gets the widest axis's span (every point in one place: a unit box)
      const widest = Math.max(...bulk.slice(0, dims).map((b) => b[1] - b[0]));
      for (let k = 0; k < dims; k++) {
        const half = widest > 0 ? widest / 2 : 1, mid = (bulk[k][0] + bulk[k][1]) / 2;
        if (!(bulk[k][1] - bulk[k][0] > 1e-9 * (widest || 1))) bulk[k] = [mid - half, mid + half];
      }
      center = bulk.map((b) => (b[0] + b[1]) / 2);
      unit = Math.max(1e-12, ...bulk.map((b) => (b[1] - b[0]) / 2));
      extent = bulk.map((b) => Math.max(1e-3, (b[1] - b[0]) / 2 / unit));
      lodOrder = interleaved();
      norm = new Float32Array(3 * n); // centred on the bulk, one scale for every axis (proportions kept)
      for (let i = 0; i < n; i++) for (let k = 0; k < dims; k++) norm[3 * i + k] = (raw[i * dims + k] - center[k]) / unit;
      if (gl) upload(buf.pos, inDrawOrder(norm, 3, Float32Array));
      if (selection.length !== n) selection = new Uint8Array(n);
      if (mask && mask.length !== n) mask = null;
      if (gl) uploadColors();
      uploadSizes(sizes && sizes.length === n ? sizes : opt.size); // again: the drawing order may have changed
      boxEdges();
      home2 = frameView(bulk);
      const fov = 0.3;
      home3 = { yaw: -0.6, pitch: 0.35, dist: Math.min(40, Math.max(0.2, 1.1 * Math.hypot(...extent) / Math.sin(fov))), panX: 0, panY: 0 };
      computeAnchors();
      contour = null;
      screenFor = null;
      hovered = -1;
      for (const [name, o] of overlays) { o.rows = o.rows.filter((r) => r < n); if (!o.rows.length) overlays.delete(name); }
      if (lines && gl) api.setLines(lines.rows);
      frame();
    }
    function frameView(bulk) {
      const W = Math.max(1, canvas.clientWidth), H = Math.max(1, canvas.clientHeight);
      const sx = Math.max(1e-12, (bulk[0][1] - bulk[0][0]) * (1 + 2 * MARGIN));
      const sy = Math.max(1e-12, (bulk[1][1] - bulk[1][0]) * (1 + 2 * MARGIN));
      return { cx: center[0], cy: center[1], scale: Math.min(W / sx, H / sy), W, H, bulk };
    }
    function frame() {
      if (!three) {
        if (home2.bulk && (home2.W !== canvas.clientWidth || home2.H !== canvas.clientHeight)) home2 = frameView(home2.bulk);
        Object.assign(view, { cx: home2.cx, cy: home2.cy, scale: home2.scale });
      } else Object.assign(cam, home3);
      redraw();
    }
    function boxEdges() {
      if (!gl) return;
      const E = extent, corners = [], edges = [];
      for (let i = 0; i < 8; i++) corners.push([(i & 1 ? 1 : -1) * E[0], (i & 2 ? 1 : -1) * E[1], (i & 4 ? 1 : -1) * E[2]]);
      for (let i = 0; i < 8; i++) for (const bit of [1, 2, 4]) if (!(i & bit)) edges.push(...corners[i], ...corners[i | bit]);
      upload(buf.box, new Float32Array(edges));
    }

    // ---- camera --------------------------------------------------------------------------------------------
    const FOV = 0.3;
    function mul(a, b) {
      const o = new Float32Array(16);
      for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) {
        let s = 0;
        for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
        o[c * 4 + r] = s;
      }
      return o;
    }
    function focal(aspect) { return Math.min(1, aspect) / Math.tan(FOV); }
    function matrix() {
      const W = Math.max(1, canvas.clientWidth), H = Math.max(1, canvas.clientHeight), aspect = W / H;
      if (!three) { // normalised p -> data x = p * unit + centre -> clip (x - cx) * scale * 2 / W
        const ax = 2 * view.scale * unit / W, ay = 2 * view.scale * unit / H;
        return new Float32Array([ax, 0, 0, 0, 0, ay, 0, 0, 0, 0, 1, 0,
          2 * (center[0] - view.cx) * view.scale / W, 2 * (center[1] - view.cy) * view.scale / H, 0, 1]);
      }
      const cy = Math.cos(cam.yaw), sy = Math.sin(cam.yaw), cp = Math.cos(cam.pitch), sp = Math.sin(cam.pitch);
      const rotY = new Float32Array([cy, 0, -sy, 0, 0, 1, 0, 0, sy, 0, cy, 0, 0, 0, 0, 1]);
      const rotX = new Float32Array([1, 0, 0, 0, 0, cp, sp, 0, 0, -sp, cp, 0, 0, 0, 0, 1]);
      const v = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, -cam.panX, -cam.panY, -cam.dist, 1]);
      const f = focal(aspect), near = 0.05, far = 80;
      const proj = new Float32Array([f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / (near - far), -1,
        0, 0, 2 * far * near / (near - far), 0]);
      return mul(proj, mul(v, mul(rotX, rotY)));
    }
    let mvp = new Float32Array(16);
    // 2-D: CSS px (relative to the canvas) of raw data (x, y); the same formula the tests use
    const toScreen2 = (x, y) => [canvas.clientWidth / 2 + (x - view.cx) * view.scale, canvas.clientHeight / 2 - (y - view.cy) * view.scale];
    // 3-D: [x, y, depth] of a normalised point, null behind the eye or clipped
    function project3(v) {
      const m = mvp, cw = m[3] * v[0] + m[7] * v[1] + m[11] * v[2] + m[15];
      if (cw <= 0) return null;
      const z = (m[2] * v[0] + m[6] * v[1] + m[10] * v[2] + m[14]) / cw;
      if (z < -1 || z > 1) return null;
      return [((m[0] * v[0] + m[4] * v[1] + m[8] * v[2] + m[12]) / cw + 1) / 2 * canvas.clientWidth,
        (1 - (m[1] * v[0] + m[5] * v[1] + m[9] * v[2] + m[13]) / cw) / 2 * canvas.clientHeight, z];
    }
    function projectRow(i) {
      if (!three) return toScreen2(raw[i * dims], raw[i * dims + 1]).concat([0]);
      return project3(norm.subarray(3 * i, 3 * i + 3));
    }
    function zoomRatio() { return three ? home3.dist / cam.dist : view.scale / home2.scale; }

    // ---- screen positions (hover, selection): one pass over the points per camera ----------------------------
    let screen = null, screenFor = null;
    function screenPositions() {
      const W = canvas.clientWidth, H = canvas.clientHeight;
      const key = three ? [mvp, W, H] : [view.cx, view.cy, view.scale, W, H];
      if (screenFor && screenFor.length === key.length && screenFor.every((v, k) => v === key[k])) return screen;
      if (!screen || screen.x.length !== n) screen = { x: new Float64Array(n), y: new Float64Array(n), z: new Float32Array(n) };
      if (!three) {
        const hw = W / 2, hh = H / 2, s = view.scale, cx = view.cx, cy = view.cy;
        for (let i = 0; i < n; i++) { screen.x[i] = hw + (raw[2 * i] - cx) * s; screen.y[i] = hh - (raw[2 * i + 1] - cy) * s; }
      } else {
        const m = mvp; // project3 inlined: no arrays made per point
        for (let i = 0; i < n; i++) {
          const x = norm[3 * i], y = norm[3 * i + 1], z = norm[3 * i + 2];
          const cw = m[3] * x + m[7] * y + m[11] * z + m[15], cz = (m[2] * x + m[6] * y + m[10] * z + m[14]) / cw;
          if (!(cw > 0) || cz < -1 || cz > 1) { screen.x[i] = NaN; continue; }
          screen.x[i] = ((m[0] * x + m[4] * y + m[8] * z + m[12]) / cw + 1) / 2 * W;
          screen.y[i] = (1 - (m[1] * x + m[5] * y + m[9] * z + m[13]) / cw) / 2 * H;
          screen.z[i] = cz;
        }
      }
      screenFor = key;
      return screen;
    }
    function nearest(mx, my) {
      const S = screenPositions(), R = Math.max(4, 2 + 0.5 * pointScale * maxSize);
      let best = -1, bestD = Infinity, bestZ = Infinity;
      for (let i = 0; i < n; i++) {
        const dx = S.x[i] - mx, dy = S.y[i] - my, d = dx * dx + dy * dy;
        if (!(d <= R * R) || (mask && !mask[i])) continue; // NaN (behind the eye) fails too
        const r = Math.max(4, sizes[i] * pointScale * 0.5 + 2);
        if (d > r * r) continue;
        const cz = S.z[i];
        if (three ? cz < bestZ - 1e-6 || (Math.abs(cz - bestZ) <= 1e-6 && d < bestD) : d < bestD) { best = i; bestD = d; bestZ = cz; }
      }
      return best;
    }

    // ---- drawing -----------------------------------------------------------------------------------------
    let pending = false;
    // quick: a frame of a pan or zoom gesture (see drawQuick); anything else draws every point
    let pendingQuick = true;
    function redraw(quick) {
      pendingQuick = pendingQuick && !!quick;
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; const q = pendingQuick; pendingQuick = true; draw(q); });
    }
    // Software WebGL (no GPU: SwiftShader) needs ~200 ms to draw 262,144 points, so while a pan or zoom
    // goes on, a slow renderer moves a copy of the last full frame instead (a 2-D canvas transform, a few ms)
    // and draws every point again once the gesture pauses. Labels and contours are placed every frame.
    const SLOW_MS = 25, SETTLE_MS = 160, QUICK_MIN = 20000;
    let fullMs = 0, snapView = null, fullView = null, settle = 0;
    function drawQuick() {
      if (!snapView) { // the GL canvas still holds the last full frame (preserveDrawingBuffer): copy it once
        snapCopy = document.createElement("canvas");
        snapCopy.width = snapCanvas.width = canvas.width;
        snapCopy.height = snapCanvas.height = canvas.height;
        snapCopy.getContext("2d").drawImage(canvas, 0, 0);
        snapView = Object.assign({}, fullView);
        snapCanvas.style.display = "";
        canvas.style.visibility = "hidden";
      }
      const dpr = window.devicePixelRatio || 1, W = canvas.clientWidth, H = canvas.clientHeight;
      const k = view.scale / snapView.scale;
      const tx = W / 2 + (snapView.cx - view.cx) * view.scale - W / 2 * k;
      const ty = H / 2 - (snapView.cy - view.cy) * view.scale - H / 2 * k;
      const ctx = snapCanvas.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, snapCanvas.width, snapCanvas.height);
      ctx.setTransform(k, 0, 0, k, dpr * tx, dpr * ty);
      ctx.drawImage(snapCopy, 0, 0);
      clearTimeout(settle);
      settle = setTimeout(() => redraw(false), SETTLE_MS);
    }
    let snapCopy = null;
    function marksOf(rows) {
      const out = new Float32Array(rows.length * 3);
      for (let j = 0; j < rows.length; j++) out.set(norm.subarray(3 * rows[j], 3 * rows[j] + 3), 3 * j);
      return out;
    }
    function drawMarks(rows, color, size, ring) {
      if (!rows.length) return;
      gl.disableVertexAttribArray(loc.col);
      gl.disableVertexAttribArray(loc.size);
      gl.vertexAttrib4f(loc.col, 0, 0, 0, 0);
      gl.vertexAttrib1f(loc.size, size);
      gl.bindBuffer(gl.ARRAY_BUFFER, buf.mark);
      gl.bufferData(gl.ARRAY_BUFFER, marksOf(rows), gl.DYNAMIC_DRAW);
      gl.vertexAttribPointer(loc.pos, 3, gl.FLOAT, false, 0, 0);
      gl.uniform1f(loc.scale, window.devicePixelRatio || 1);
      gl.uniform1f(loc.useTint, 1);
      gl.uniform1f(loc.ring, ring ? 1 : 0);
      gl.uniform1f(loc.pass, -1);
      gl.uniform3f(loc.tint, ...color);
      gl.drawArrays(gl.POINTS, 0, rows.length);
    }
    function drawLines(data, count, color) {
      gl.useProgram(L);
      gl.uniformMatrix4fv(loc.lmvp, false, mvp);
      gl.uniform3f(loc.lcolor, ...color);
      gl.bindBuffer(gl.ARRAY_BUFFER, data);
      gl.enableVertexAttribArray(loc.lpos);
      gl.vertexAttribPointer(loc.lpos, 3, gl.FLOAT, false, 0, 0);
      gl.drawArrays(gl.LINES, 0, count);
    }
    function draw(quick) {
      const t0 = performance.now();
      const dpr = window.devicePixelRatio || 1, W = canvas.clientWidth, H = canvas.clientHeight;
      if (!three && home2.bulk && (home2.W !== W || home2.H !== H)) { // keep the view's centre and zoom ratio on resize
        const ratio = view.scale / home2.scale;
        home2 = frameView(home2.bulk);
        view.scale = home2.scale * ratio;
      }
      const next = matrix();
      if (next.some((v, k) => v !== mvp[k])) mvp = next;
      const sized = canvas.width === Math.round(W * dpr) && canvas.height === Math.round(H * dpr);
      const slow = quick && gl && fullMs > SLOW_MS && n >= QUICK_MIN;
      if (slow && !three && fullView && sized) drawQuick();
      else if (gl) {
        clearTimeout(settle);
        const count = slow && lodOrder ? Math.min(n, LOD_POINTS) : n; // a turning 3-D map: an even sample
        if (count < n) settle = setTimeout(() => redraw(false), SETTLE_MS);
        if (snapView) { snapView = null; snapCopy = null; snapCanvas.style.display = "none"; canvas.style.visibility = ""; }
        fullView = Object.assign({}, view);
        const w = Math.round(W * dpr), h = Math.round(H * dpr);
        if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
        gl.viewport(0, 0, w, h);
        gl.clearColor(0, 0, 0, 0);
        gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
        if (three) { drawLines(buf.box, 24, [0.72, 0.74, 0.78]); gl.enable(gl.DEPTH_TEST); }
        if (lines && lines.count) drawLines(buf.lines, lines.count, lineColor);
        gl.useProgram(P);
        gl.uniformMatrix4fv(loc.mvp, false, mvp);
        gl.uniform1f(loc.scale, pointScale * dpr);
        gl.uniform1f(loc.useTint, 0);
        gl.uniform1f(loc.ring, 0);
        gl.uniform3f(loc.bg, ...hexRGB(opt.background));
        const attrs = [[buf.pos, loc.pos, 3, gl.FLOAT, false], [buf.col, loc.col, 4, gl.UNSIGNED_BYTE, true],
          [buf.size, loc.size, 1, gl.FLOAT, false]];
        for (const [b, l, k, type, normalize] of attrs) {
          gl.bindBuffer(gl.ARRAY_BUFFER, b);
          gl.enableVertexAttribArray(l);
          gl.vertexAttribPointer(l, k, type, normalize, 0, 0);
        }
        if (mask) { // filtered-out points first, faint, under the rest
          gl.uniform1f(loc.pass, 1);
          gl.drawArrays(gl.POINTS, 0, count);
          gl.uniform1f(loc.pass, 0);
        } else gl.uniform1f(loc.pass, -1);
        gl.drawArrays(gl.POINTS, 0, count);
        gl.disable(gl.DEPTH_TEST);
        for (const o of overlays.values()) drawMarks(o.rows, o.rgb, o.size, false);
        const sel = selected();
        if (sel.length) drawMarks(sel, [0.1, 0.1, 0.1], 11, true);
      }
      drawContours();
      placeHoverRing();
      placeAxisNames();
      placeLabels();
      stat.lastFrameMs = performance.now() - t0;
      stat.frames += 1;
    }

    // ---- axis names: under and beside a 2-D map, at the ends of the box's edges in 3-D -----------------------
    const axisDivs = [];
    function placeAxisNames() {
      const names = opt.axes || [];
      while (axisDivs.length < names.length) axisDivs.push(el("div", "em-axis"));
      axisDivs.forEach((d, k) => {
        d.textContent = names[k] || "";
        d.classList.toggle("em-vertical", !three && k === 1);
        const W = canvas.clientWidth, H = canvas.clientHeight, E = extent;
        const p = !three ? (k === 0 ? [W / 2, H - 10] : k === 1 ? [12, H / 2] : null)
          : project3([[E[0] * 1.1, -E[1], -E[2]], [-E[0], E[1] * 1.1, -E[2]], [-E[0], -E[1], E[2] * 1.1]][k] || [0, 0, 0]);
        d.style.display = p && names[k] ? "" : "none";
        if (p) { d.style.left = p[0] + "px"; d.style.top = p[1] + "px"; }
      });
    }

    // ---- labels: largest first at the cluster's median, displaced with a leader line, never overlapping -------
    function levelsOf(spec) { return spec && Array.isArray(spec.levels) ? spec.levels : []; }
    function computeAnchors() { // once per coords and labels: the median of each cluster's points, per axis
      anchors = levelsOf(labelSpec).map((level) => {
        const a = level.assignment, m = level.labels.length, count = new Int32Array(m + 1);
        for (let i = 0; i < n; i++) if (a[i] >= 0 && a[i] < m) count[a[i] + 1] += 1;
        for (let c = 0; c < m; c++) count[c + 1] += count[c];
        const rows = new Int32Array(count[m]), fill = count.slice(0, m);
        for (let i = 0; i < n; i++) if (a[i] >= 0 && a[i] < m) rows[fill[a[i]]++] = i;
        const at = [];
        for (let c = 0; c < m; c++) {
          const lo = count[c], hi = count[c + 1];
          if (hi <= lo) { at.push(null); continue; }
          const p = [];
          for (let k = 0; k < dims; k++) {
            const v = new Float64Array(hi - lo);
            for (let j = lo; j < hi; j++) v[j - lo] = raw[rows[j] * dims + k];
            p.push(median(v));
          }
          at.push(p);
        }
        const size = level.sizes || at.map((_, c) => count[c + 1] - count[c]);
        const rank = at.map((_, c) => c).filter((c) => at[c]).sort((x, y) => size[y] - size[x] || x - y);
        return { name: level.name || "clusters", at, rank, widths: level.labels.map((t) => textWidth(t)) };
      });
      tokenRows = labelSpec && labelSpec.tokenPriority ? Int32Array.from(labelSpec.tokenPriority) : null;
    }
    const widthCache = new Map();
    function textWidth(t) {
      let w = widthCache.get(t);
      if (w === undefined) { w = Math.ceil(measure.measureText(t).width) + 2 * LABEL_PAD + 2; widthCache.set(t, w); }
      return w;
    }
    // offsets (CSS px) of a label's centre from its anchor: on it, then rings around it
    function clusterOffsets(w, h) {
      const out = [[0, 0]];
      for (const t of [1, 2, 3, 4.5]) {
        const gx = w / 2 + 6 * t, gy = (h + 4) * t;
        out.push([0, -gy], [0, gy], [gx + w / 2 * (t - 1), 0], [-gx - w / 2 * (t - 1), 0],
          [gx, -gy], [-gx, -gy], [gx, gy], [-gx, gy]);
      }
      return out;
    }
    function tokenOffsets(w, h) { return [[w / 2 + 4, -h / 2 - 2], [-w / 2 - 4, -h / 2 - 2], [w / 2 + 4, h / 2 + 2], [-w / 2 - 4, h / 2 + 2]]; }
    function currentLevel() {
      const L = anchors.length + (tokenRows && !three ? 1 : 0);
      if (!L) return -1;
      if (three) return 0;
      const z = zoomRatio();
      return Math.min(L - 1, z < LEVEL_STEP ? 0 : Math.floor(Math.log(z) / Math.log(LEVEL_STEP)));
    }
    function placeLabels() {
      const W = canvas.clientWidth, H = canvas.clientHeight, placed = [], items = [];
      shown = [];
      const fits = (b) => b[0] >= 0 && b[1] >= 0 && b[2] <= W && b[3] <= H &&
        !placed.some((q) => q[0] < b[2] + 2 && b[0] < q[2] + 2 && q[1] < b[3] + 2 && b[1] < q[3] + 2);
      const tryPlace = (item, offsets) => {
        for (const [dx, dy] of offsets) {
          const cx = item.anchor[0] + dx, cy = item.anchor[1] + dy;
          const b = [cx - item.w / 2, cy - LABEL_H / 2, cx + item.w / 2, cy + LABEL_H / 2];
          if (!fits(b)) continue;
          placed.push(b);
          item.box = b;
          const inside = item.anchor[0] >= b[0] && item.anchor[0] <= b[2] && item.anchor[1] >= b[1] && item.anchor[1] <= b[3];
          item.leader = item.level !== "tokens" && item.level !== "overlay" && !inside;
          shown.push(item);
          return;
        }
      };
      for (const [name, o] of overlays) { // named overlays with labels first (search matches, the prompt...)
        if (!o.label) continue;
        for (const r of o.rows.slice(0, 60)) {
          const p = projectRow(r);
          if (p && p[0] >= 0 && p[0] <= W && p[1] >= 0 && p[1] <= H) {
            tryPlace({ level: "overlay", id: r, group: name, text: display[r], w: textWidth(display[r]), anchor: [p[0], p[1]] }, tokenOffsets(textWidth(display[r]), LABEL_H));
          }
        }
      }
      const li = labelsOn ? currentLevel() : -1;
      stat.level = li < 0 ? "" : li < anchors.length ? anchors[li].name : "tokens";
      if (li >= 0 && li < anchors.length) {
        const A = anchors[li], spec = levelsOf(labelSpec)[li];
        for (const c of A.rank) {
          const p = three ? project3(A.at[c].map((v, k) => (v - center[k]) / unit)) : toScreen2(A.at[c][0], A.at[c][1]);
          if (!p || !spec.labels[c]) continue;
          const item = { level: A.name, id: c, text: spec.labels[c], w: A.widths[c], anchor: [p[0], p[1]] };
          if (item.anchor[0] < 0 || item.anchor[0] > W || item.anchor[1] < 0 || item.anchor[1] > H) continue;
          tryPlace(item, clusterOffsets(item.w, LABEL_H));
        }
      } else if (li >= 0) { // the finest level: the most important tokens of the visible area
        let looked = 0;
        const most = Math.max(10, Math.round(W * H / TOKEN_LABEL_AREA)) + shown.length;
        for (let j = 0; j < tokenRows.length && looked < MAX_TOKEN_LABELS && shown.length < most; j++) {
          const r = tokenRows[j];
          if (r < 0 || r >= n || (mask && !mask[r])) continue;
          const p = toScreen2(raw[r * dims], raw[r * dims + 1]);
          if (p[0] < 0 || p[0] > W || p[1] < 0 || p[1] > H) continue;
          looked += 1;
          const w = textWidth(display[r]);
          tryPlace({ level: "tokens", id: r, text: display[r], w, anchor: p }, tokenOffsets(w, LABEL_H));
        }
      }
      renderLabels();
      stat.labelsShown = shown.length;
    }
    const pool = [], leaders = [];
    function renderLabels() {
      while (pool.length < shown.length) { const d = el("div", "em-label", labelLayer); pool.push(d); }
      while (leaders.length < shown.length) {
        const l = document.createElementNS(SVG_NS, "line");
        l.setAttribute("class", "em-leader");
        l.setAttribute("stroke", "rgba(60,60,60,.7)");
        l.setAttribute("stroke-width", "1");
        svg.appendChild(l);
        leaders.push(l);
      }
      shown.forEach((s, k) => {
        const d = pool[k];
        if (d.textContent !== s.text) d.textContent = s.text;
        d.dataset.level = s.level;
        d.dataset.id = String(s.id);
        d.style.display = "block";
        d.style.left = s.box[0] + "px";
        d.style.top = s.box[1] + "px";
        d.style.width = (s.box[2] - s.box[0]) + "px";
        const l = leaders[k];
        if (s.leader) { // from the anchor to the nearest point of the box
          const ex = Math.max(s.box[0], Math.min(s.anchor[0], s.box[2])), ey = Math.max(s.box[1], Math.min(s.anchor[1], s.box[3]));
          l.setAttribute("x1", s.anchor[0]); l.setAttribute("y1", s.anchor[1]);
          l.setAttribute("x2", ex); l.setAttribute("y2", ey);
          l.dataset.label = String(k);
          l.style.display = "";
        } else l.style.display = "none";
      });
      for (let k = shown.length; k < pool.length; k++) pool[k].style.display = "none";
      for (let k = shown.length; k < leaders.length; k++) leaders[k].style.display = "none";
    }

    // ---- density contours: binned counts, Gaussian blur, marching squares at a few mass levels ---------------
    const CONTOUR_MASS = [0.5, 0.75, 0.92]; // each line encloses this share of the points
    function computeContours() {
      const b = home2.bulk;
      if (!b || three || !n) return { segs: [], levels: [] };
      const pad = 0.25, G = 160;
      const x0 = b[0][0] - pad * (b[0][1] - b[0][0]), x1 = b[0][1] + pad * (b[0][1] - b[0][0]);
      const y0 = b[1][0] - pad * (b[1][1] - b[1][0]), y1 = b[1][1] + pad * (b[1][1] - b[1][0]);
      const cell = Math.max(x1 - x0, y1 - y0, 1e-12) / G;
      const nx = Math.ceil((x1 - x0) / cell) + 1, ny = Math.ceil((y1 - y0) / cell) + 1;
      let grid = new Float32Array(nx * ny);
      for (let i = 0; i < n; i++) {
        const gx = Math.round((raw[2 * i] - x0) / cell), gy = Math.round((raw[2 * i + 1] - y0) / cell);
        if (gx >= 0 && gx < nx && gy >= 0 && gy < ny) grid[gy * nx + gx] += 1;
      }
      const sigma = 1.6, R = 5, kern = [];
      for (let k = -R; k <= R; k++) kern.push(Math.exp(-k * k / (2 * sigma * sigma)));
      const ksum = kern.reduce((s, v) => s + v, 0);
      for (const horizontal of [true, false]) { // separable Gaussian
        const out = new Float32Array(nx * ny);
        for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
          let s = 0;
          for (let k = -R; k <= R; k++) {
            const xx = horizontal ? x + k : x, yy = horizontal ? y : y + k;
            if (xx >= 0 && xx < nx && yy >= 0 && yy < ny) s += grid[yy * nx + xx] * kern[k + R];
          }
          out[y * nx + x] = s / ksum;
        }
        grid = out;
      }
      const sorted = Float32Array.from(grid).sort().reverse();
      const total = sorted.reduce((s, v) => s + v, 0);
      const levels = [];
      let acc = 0, li = 0;
      for (let k = 0; k < sorted.length && li < CONTOUR_MASS.length; k++) {
        acc += sorted[k];
        while (li < CONTOUR_MASS.length && acc >= CONTOUR_MASS[li] * total) { levels.push(sorted[k]); li++; }
      }
      const segs = levels.map((t) => marchingSquares(grid, nx, ny, t, x0, y0, cell));
      return { segs, levels };
    }
    // segments (x0, y0, x1, y1 in data units) of the iso-line grid == t
    function marchingSquares(g, nx, ny, t, x0, y0, cell) {
      const out = [];
      const lerp = (a, b) => (t - a) / ((b - a) || 1e-12);
      for (let y = 0; y + 1 < ny; y++) for (let x = 0; x + 1 < nx; x++) {
        const a = g[y * nx + x], b = g[y * nx + x + 1], c = g[(y + 1) * nx + x + 1], d = g[(y + 1) * nx + x];
        const code = (a >= t ? 1 : 0) | (b >= t ? 2 : 0) | (c >= t ? 4 : 0) | (d >= t ? 8 : 0);
        if (code === 0 || code === 15) continue;
        // edge points: bottom (a-b), right (b-c), top (d-c), left (a-d)
        const P = {
          B: [x + lerp(a, b), y], R: [x + 1, y + lerp(b, c)], T: [x + lerp(d, c), y + 1], L: [x, y + lerp(a, d)],
        };
        const pairs = {
          1: ["L", "B"], 2: ["B", "R"], 3: ["L", "R"], 4: ["R", "T"], 6: ["B", "T"], 7: ["L", "T"], 8: ["T", "L"],
          9: ["T", "B"], 11: ["T", "R"], 12: ["R", "L"], 13: ["R", "B"], 14: ["B", "L"],
        };
        let list;
        if (code === 5 || code === 10) { // saddle: the centre's value decides how the corners connect
          const high = (a + b + c + d) / 4 >= t;
          list = (code === 5) === high ? [["L", "T"], ["B", "R"]] : [["L", "B"], ["R", "T"]];
        } else list = [pairs[code]];
        for (const [p, q] of list) out.push(x0 + P[p][0] * cell, y0 + P[p][1] * cell, x0 + P[q][0] * cell, y0 + P[q][1] * cell);
      }
      return Float32Array.from(out);
    }
    function drawContours(ctx2, scale2) {
      const ctx = ctx2 || contourCanvas.getContext("2d"), dpr = scale2 || window.devicePixelRatio || 1;
      const W = canvas.clientWidth, H = canvas.clientHeight;
      if (!ctx2) {
        if (contourCanvas.width !== Math.round(W * dpr) || contourCanvas.height !== Math.round(H * dpr)) {
          contourCanvas.width = Math.round(W * dpr); contourCanvas.height = Math.round(H * dpr);
        }
        ctx.clearRect(0, 0, contourCanvas.width, contourCanvas.height);
      }
      if (!contoursOn || three) { stat.contourSegments = 0; return; }
      if (!contour) contour = computeContours();
      ctx.save();
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      let count = 0;
      contour.segs.forEach((segs, li) => {
        ctx.beginPath();
        for (let k = 0; k < segs.length; k += 4) {
          const p = toScreen2(segs[k], segs[k + 1]), q = toScreen2(segs[k + 2], segs[k + 3]);
          ctx.moveTo(p[0], p[1]);
          ctx.lineTo(q[0], q[1]);
        }
        ctx.strokeStyle = `rgba(70, 80, 110, ${0.35 + 0.2 * li})`;
        ctx.lineWidth = 1 + 0.4 * li;
        ctx.stroke();
        count += segs.length / 4;
      });
      ctx.restore();
      stat.contourSegments = count;
    }

    // ---- hover tooltip and ring (an SVG circle: hovering never redraws the points) --------------------------
    let ring = null;
    function placeHoverRing() {
      if (!ring) {
        ring = document.createElementNS(SVG_NS, "circle");
        ring.setAttribute("class", "em-hover");
        ring.setAttribute("r", "6");
        ring.setAttribute("fill", "none");
        ring.setAttribute("stroke", "#db1a26");
        ring.setAttribute("stroke-width", "2.5");
        svg.appendChild(ring);
      }
      const p = hovered >= 0 ? projectRow(hovered) : null;
      ring.style.display = p ? "" : "none";
      if (p) { ring.setAttribute("cx", p[0]); ring.setAttribute("cy", p[1]); }
    }
    function showTip(i, mx, my) {
      const before = hovered;
      hovered = i;
      if (i < 0) tip.style.display = "none";
      else {
        const text = hoverText ? hoverText(i) : display[i];
        const parts = Array.isArray(text) ? text : [String(text)];
        tip.replaceChildren();
        parts.forEach((t, k) => { const d = el("div", k ? "em-tip-line" : "em-tip-main", tip); d.textContent = t; });
        tip.style.display = "block";
        tip.style.left = Math.max(0, Math.min(mx + 14, canvas.clientWidth - tip.offsetWidth - 4)) + "px";
        tip.style.top = (my + 14 + tip.offsetHeight > canvas.clientHeight ? my - 14 - tip.offsetHeight : my + 14) + "px";
      }
      if (before !== i) { emit("hover", i); placeHoverRing(); }
    }

    // ---- selection ------------------------------------------------------------------------------------------
    function selected() {
      let c = 0;
      for (let i = 0; i < selection.length; i++) c += selection[i];
      const out = new Int32Array(c);
      let k = 0;
      for (let i = 0; i < selection.length; i++) if (selection[i]) out[k++] = i;
      return out;
    }
    function select(rows) {
      selection = new Uint8Array(n);
      for (const r of rows || []) if (r >= 0 && r < n) selection[r] = 1;
      redraw();
    }
    // rows whose screen position lies inside the polygon (CSS px, even-odd rule); masked rows never count
    function rowsInPolygon(poly) {
      const S = screenPositions();
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const [x, y] of poly) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
      const out = [], m = poly.length;
      for (let i = 0; i < n; i++) {
        const px = S.x[i], py = S.y[i];
        if (!(px >= x0 && px <= x1 && py >= y0 && py <= y1) || (mask && !mask[i])) continue;
        let inside = false;
        for (let a = 0, b = m - 1; a < m; b = a++) {
          const [xa, ya] = poly[a], [xb, yb] = poly[b];
          if ((ya > py) !== (yb > py) && px < (xb - xa) * (py - ya) / (yb - ya) + xa) inside = !inside;
        }
        if (inside) out.push(i);
      }
      return out;
    }
    function applySelection(rows, add) {
      if (!add) selection = new Uint8Array(n);
      for (const r of rows) selection[r] = 1;
      redraw();
      emit("select", selected());
    }
    let shape = null;
    function drawShape(points, closed) {
      if (!shape) {
        shape = document.createElementNS(SVG_NS, "polygon");
        shape.setAttribute("class", "em-shape");
        shape.setAttribute("fill", "rgba(31,119,180,.12)");
        shape.setAttribute("stroke", "rgba(31,119,180,.9)");
        shape.setAttribute("stroke-dasharray", closed ? "" : "4 3");
        svg.appendChild(shape);
      }
      shape.setAttribute("points", points.map((p) => p[0] + "," + p[1]).join(" "));
      shape.style.display = points.length ? "" : "none";
    }

    // ---- mouse -------------------------------------------------------------------------------------------
    let drag = null, hoverAt = null, hoverQueued = false;
    const local = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener("mousedown", (e) => {
      const at = local(e);
      const mode = three || e.button === 2 || tool === "pan" ? (three && !e.shiftKey && e.button !== 2 ? "rotate" : "pan") : tool;
      drag = { at, start: [e.clientX, e.clientY], mode, view: Object.assign({}, view), cam: Object.assign({}, cam), poly: [at], moved: false };
      e.preventDefault();
    });
    function onMove(e) {
      if (drag) {
        const dx = e.clientX - drag.start[0], dy = e.clientY - drag.start[1];
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (drag.mode === "lasso") { // every mouse position is a vertex, the first few included
          drag.poly.push(local(e));
          if (drag.moved) drawShape(drag.poly, false);
          return;
        }
        if (!drag.moved) return;
        if (drag.mode === "pan") {
          if (three) {
            const H = Math.max(1, canvas.clientHeight), k = 2 * drag.cam.dist / (focal(canvas.clientWidth / H) * H);
            cam.panX = drag.cam.panX - dx * k;
            cam.panY = drag.cam.panY + dy * k;
          } else {
            view.cx = drag.view.cx - dx / view.scale;
            view.cy = drag.view.cy + dy / view.scale;
          }
        } else if (drag.mode === "rotate") {
          cam.yaw = drag.cam.yaw + dx * 0.008;
          cam.pitch = Math.max(-1.55, Math.min(1.55, drag.cam.pitch + dy * 0.008));
        } else if (drag.mode === "box") {
          const [x0, y0] = drag.at, [x1, y1] = local(e);
          drag.poly = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]];
          drawShape(drag.poly, true);
          return;
        }
        if (hovered >= 0) showTip(-1);
        redraw(true);
        return;
      }
      if (e.target !== canvas) return;
      hoverAt = local(e);
      if (hoverQueued) return;
      hoverQueued = true;
      requestAnimationFrame(() => { hoverQueued = false; if (hoverAt) showTip(nearest(hoverAt[0], hoverAt[1]), hoverAt[0], hoverAt[1]); });
    }
    function onUp(e) {
      if (!drag) return;
      const d = drag;
      drag = null;
      if ((d.mode === "box" || d.mode === "lasso") && d.moved) {
        if (d.mode === "lasso") d.poly.push(local(e));
        drawShape([], false);
        applySelection(rowsInPolygon(d.poly), e.shiftKey);
        return;
      }
      if (d.moved) return;
      const row = nearest(d.at[0], d.at[1]);
      if (e.shiftKey && !three && row >= 0) { selection[row] = selection[row] ? 0 : 1; redraw(); emit("select", selected()); return; }
      if (tool !== "pan" && row < 0 && !e.shiftKey && selection.some((v) => v)) applySelection([], false);
      emit("click", row, e);
    }
    window.addEventListener("mousemove", onMove);
    window.addEventListener("mouseup", onUp);
    canvas.addEventListener("mouseleave", () => { hoverAt = null; if (hovered >= 0) showTip(-1); });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      zoomBy(Math.exp(-e.deltaY * 0.0015), ...local(e));
    }, { passive: false });
    canvas.addEventListener("dblclick", () => frame());
    const resizer = global.ResizeObserver ? new ResizeObserver(() => redraw()) : null;
    if (resizer) resizer.observe(container); else window.addEventListener("resize", redraw);
    function zoomBy(f, mx, my) {
      if (three) cam.dist = Math.max(0.2, Math.min(40, cam.dist / f));
      else { // the data point under the cursor stays where it is
        const W = canvas.clientWidth, H = canvas.clientHeight;
        const x = view.cx + ((mx === undefined ? W / 2 : mx) - W / 2) / view.scale, y = view.cy - ((my === undefined ? H / 2 : my) - H / 2) / view.scale;
        const scale = Math.max(home2.scale / 50, Math.min(home2.scale * 5000, view.scale * f));
        view.cx = x - ((mx === undefined ? W / 2 : mx) - W / 2) / scale;
        view.cy = y + ((my === undefined ? H / 2 : my) - H / 2) / scale;
        view.scale = scale;
      }
      if (hovered >= 0) showTip(-1);
      redraw(true);
    }

    // ---- PNG: background, contours, points, leader lines and labels as one picture ------------------------------
    function toPNG() {
      draw();
      const dpr = window.devicePixelRatio || 1, W = canvas.clientWidth, H = canvas.clientHeight;
      const out = document.createElement("canvas");
      out.width = Math.round(W * dpr); out.height = Math.round(H * dpr);
      const ctx = out.getContext("2d");
      ctx.fillStyle = opt.background;
      ctx.fillRect(0, 0, out.width, out.height);
      drawContours(ctx, dpr);
      if (gl) ctx.drawImage(canvas, 0, 0, out.width, out.height);
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.font = FONT;
      ctx.textBaseline = "middle";
      for (const s of shown) {
        const [x0, y0, x1, y1] = s.box;
        if (s.leader) {
          ctx.strokeStyle = "rgba(60,60,60,.7)";
          ctx.beginPath();
          ctx.moveTo(s.anchor[0], s.anchor[1]);
          ctx.lineTo(Math.max(x0, Math.min(s.anchor[0], x1)), Math.max(y0, Math.min(s.anchor[1], y1)));
          ctx.stroke();
        }
        ctx.fillStyle = "rgba(255,255,255,.82)";
        ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
        ctx.strokeStyle = "rgba(80,80,80,.45)";
        ctx.strokeRect(x0 + 0.5, y0 + 0.5, x1 - x0 - 1, y1 - y0 - 1);
        ctx.fillStyle = "#111";
        ctx.fillText(s.text, x0 + LABEL_PAD, (y0 + y1) / 2);
      }
      return out.toDataURL("image/png");
    }

    // ---- public API ------------------------------------------------------------------------------------------
    const api = {
      setCoords(coords, d) { setCoords(coords, d); return api; },
      setColors(c) { colors = c; uploadColors(); redraw(); return api; },
      setSizes(s) { uploadSizes(s); redraw(); return api; },
      setPointScale(s) { pointScale = Number(s) || 1; screenFor = null; redraw(); return api; },
      setMask(m) { mask = m && m.length === n ? m : null; uploadMask(); screenFor = null; redraw(); return api; },
      setOverlay(name, rows, o) {
        const rs = Array.from(rows || []).filter((r) => r >= 0 && r < n);
        if (!rs.length) overlays.delete(name);
        else {
          const s = Object.assign({ color: "#d62728", size: 8, label: false }, o || {});
          overlays.set(name, { rows: rs, rgb: hexRGB(s.color), size: s.size, label: !!s.label });
        }
        redraw();
        return api;
      },
      setLines(pairs, o) {
        const p = pairs ? Array.from(pairs) : [];
        if (o && o.color) lineColor = hexRGB(o.color);
        const given = typeof p[0] === "number" ? p : p.flat(), flat = [], ok = (r) => r >= 0 && r < n;
        for (let j = 0; j + 1 < given.length; j += 2) if (ok(given[j]) && ok(given[j + 1])) flat.push(given[j], given[j + 1]);
        const data = new Float32Array(flat.length * 3);
        for (let j = 0; j < flat.length; j++) data.set(norm.subarray(3 * flat[j], 3 * flat[j] + 3), 3 * j);
        lines = { count: flat.length, rows: flat };
        if (gl) upload(buf.lines, data);
        redraw();
        return api;
      },
      setAxes(names) { opt.axes = names || []; redraw(); return api; },
      setLabels(spec) { labelSpec = spec; computeAnchors(); redraw(); return api; },
      showLabels(on) { labelsOn = !!on; redraw(); return api; },
      showContours(on) { contoursOn = !!on; redraw(); return api; },
      setTool(t) { tool = ["pan", "box", "lasso"].includes(t) ? t : "pan"; canvas.style.cursor = tool === "pan" ? "crosshair" : "cell"; return api; },
      select(rows) { select(rows); return api; },
      selected,
      on(name, f) { if (handlers[name]) handlers[name].push(f); return api; },
      frame() { frame(); return api; },
      toPNG,
      destroy() {
        window.removeEventListener("mousemove", onMove);
        window.removeEventListener("mouseup", onUp);
        if (resizer) resizer.disconnect(); else window.removeEventListener("resize", redraw);
        container.replaceChildren(); container.classList.remove("em-map"); if (gl) gl.getExtension("WEBGL_lose_context")?.loseContext(); },
      stats() { return Object.assign({ n, dims, zoom: zoomRatio(), hovered, fullDrawMs: fullMs, quick: !!snapView }, stat); },
      // for pages, tests and benchmarks
      draw(quick) { draw(!!quick); if (gl) gl.finish(); return stat.lastFrameMs; },
      zoomBy(f, x, y) { zoomBy(f, x, y); return api; },
      panBy(dx, dy) { view.cx -= dx / view.scale; view.cy += dy / view.scale; redraw(true); return api; },
      setView(v) { Object.assign(view, v); redraw(); return api; },
      transform() { // 2-D: screen x = left + width / 2 + (x - cx) * scale, y = top + height / 2 - (y - cy) * scale
        const r = canvas.getBoundingClientRect();
        return { dims, cx: view.cx, cy: view.cy, scale: view.scale, width: canvas.clientWidth, height: canvas.clientHeight,
          left: r.left, top: r.top, homeScale: home2.scale, bulk: home2.bulk };
      },
      project: (row) => projectRow(row),
      labelBoxes: () => shown.map((s) => ({ level: s.level, id: s.id, text: s.text, box: s.box.slice(), anchor: s.anchor.slice(), leader: !!s.leader })),
      canvas,
    };
    if (opt.coords) setCoords(opt.coords, opt.dims);
    if (opt.labels) api.setLabels(opt.labels);
    draw();
    if (gl) { // how long this browser takes to draw every point: decides how gestures draw (drawQuick)
      const t = performance.now();
      draw();
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
      fullMs = performance.now() - t;
    }
    return api;
  }

  // hover lines of a map page's data (map.html, the notebook widget): the readable token, its id, its
  // corpus count and its cluster; D holds display, ids, freq (or null) and levels (or null)
  function tokenHover(D) {
    const cluster = D.levels && D.levels.length ? D.levels[0] : null;
    return (row) => {
      const lines = [D.display[row], "id " + D.ids[row]];
      if (D.freq) lines.push("frequency " + D.freq[row].toLocaleString("en-US"));
      if (cluster && cluster.assignment[row] >= 0) lines.push("cluster " + cluster.assignment[row] + ": " + cluster.labels[cluster.assignment[row]]);
      return lines;
    };
  }

  // the bytes of a base64 string (the packed float32 / int32 / uint8 arrays pages embed)
  function bytes(b64) {
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  global.EmbedlensMap = { create, tokenHover, bytes };
})(window);
