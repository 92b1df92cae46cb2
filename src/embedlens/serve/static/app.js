// embedlens explorer. Token strings are untrusted: they reach the DOM only through textContent, and
// Plotly (which renders <br>, <b>... in text) only through esc(), the plotly_text rule of
// embedlens.render.offline (only &, < and >: Plotly shows an escaped quote as the entity itself). No innerHTML anywhere. All requests go to this server.
"use strict";

(function () {
  const TRACE = { base: 0, search: 1, edges: 2, neighbors: 3, selected: 4, prompt: 5, trajectory: 6 };
  const S = {
    info: null, panels: [], method: "pca", dims: 2, color: "frequency", k: 20,
    token: null, search: "", mode: "text", prompt: "", pos: null, ready: false,
    axes: { xa: "", xb: "", ya: "", yb: "" }, cluster: null,
  };
  const timings = { start: performance.now(), firstPaint: null };
  window.embedlens = { state: S, timings: timings };

  // -- helpers ---------------------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);
  const ENT = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
  function esc(s) { return String(s).replace(/[&<>]/g, (c) => ENT[c]); }
  // scattergl and scatter3d draw `text` in WebGL: entities are not decoded there (esc() would show `&lt;`)
  // but tags such as <br> are still read, so a zero-width space after each "<" keeps a token literal
  // instead (hover boxes are SVG and use esc()).
  function escGL(s) { return String(s).replace(/</g, "<\u200b"); }
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  async function api(path, params) {
    const url = "/api/" + path + (params ? "?" + new URLSearchParams(params).toString() : "");
    const r = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await r.json().catch(() => ({ error: "bad response (" + r.status + ")" }));
    if (!r.ok) { const e = new Error(body.error || ("HTTP " + r.status)); e.status = r.status; throw e; }
    return body;
  }
  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
  function status(msg) { $("status").textContent = msg || ""; }

  // -- URL hash state ------------------------------------------------------------------------------------
  function writeHash() {
    const p = new URLSearchParams();
    p.set("model", S.panels.map((x) => x.info.title).join("|"));
    p.set("method", S.method); p.set("dims", String(S.dims)); p.set("color", S.color); p.set("k", String(S.k));
    if (S.method === "axes") for (const key of ["xa", "xb", "ya", "yb"]) if (S.axes[key]) p.set(key, S.axes[key]);
    if (S.token) p.set("token", S.token);
    if (S.search) { p.set("search", S.search); p.set("mode", S.mode); }
    if (S.prompt) p.set("prompt", S.prompt);
    if (S.pos !== null && S.prompt) p.set("pos", String(S.pos));
    const h = "#" + p.toString();
    if (location.hash !== h) history.replaceState(null, "", h);
    $("permalink").href = location.href;
  }
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (["pca", "tsne", "umap", "axes"].includes(p.get("method"))) S.method = p.get("method");
    for (const key of ["xa", "xb", "ya", "yb"]) { S.axes[key] = p.get(key) || ""; $("axis-" + key).value = S.axes[key]; }
    $("axes-form").hidden = S.method !== "axes";
    if (["2", "3"].includes(p.get("dims"))) S.dims = Number(p.get("dims"));
    if (["frequency", "length", "word"].includes(p.get("color"))) S.color = p.get("color");
    const k = Number(p.get("k")); if (Number.isInteger(k) && k >= 1 && k <= 200) S.k = k;
    S.token = p.get("token") || null;
    S.search = p.get("search") || ""; S.mode = p.get("mode") === "regex" ? "regex" : "text";
    S.prompt = p.get("prompt") || "";
    const pos = Number(p.get("pos")); S.pos = p.has("pos") && Number.isInteger(pos) && pos >= 0 ? pos : null;
    $("method").value = S.method; $("dims").value = String(S.dims); $("color").value = S.color;
    $("k").value = String(S.k); $("search").value = S.search; $("search-mode").value = S.mode;
    $("prompt-text").value = S.prompt;
    const want = p.get("model");
    if (want && S.panels.length && want !== S.panels.map((x) => x.info.title).join("|")) {
      status("this link was made for " + want + "; this server shows " + S.panels.map((x) => x.info.title).join(", "));
    }
  }

  // -- panels ----------------------------------------------------------------------------------------------
  function makePanel(info) {
    const root = el("div", null, "panel");
    root.dataset.panel = String(info.index);
    root.appendChild(el("h2", info.title + " · " + info.n.toLocaleString() + " tokens"));
    const progress = el("div", "", "progress");
    const plot = el("div", null, "plot");
    plot.id = "plot-" + info.index;
    root.appendChild(progress); root.appendChild(plot);
    $("maps").appendChild(root);
    return { info, root, progress, plot, points: null, coords: null, hover: null, freq: null,
             overlays: { search: [], neighbors: [], selected: [], prompt: [], trajectory: null }, drawn: false };
  }

  // The first panel's labels and coordinates may already be on their way (boot.js).
  function prefetched(name, P, key) {
    const pre = window.embedlensPrefetch;
    if (!pre || P.info.index !== 0 || (key !== undefined && pre.key !== key) || !pre[name]) return null;
    const promise = pre[name];
    pre[name] = null;  // use once
    return promise.catch(() => null);
  }

  async function loadPoints(P) {
    const pre = prefetched("points", P);
    P.points = (pre && await pre) || await api("points", { space: P.info.index });
    P.hover = P.points.display.map(esc);
  }

  function colorArray(P) {
    const pts = P.points;
    if (S.color === "length") return { values: pts.length, title: "length", scale: "Viridis" };
    if (S.color === "word") {
      const v = pts.whole_word.map((w, i) => (pts.special[i] ? -1 : w));
      return { values: v, title: "word", scale: [[0, "#999"], [0.5, "#f58518"], [1, "#4c78a8"]],
               ticks: { tickvals: [-1, 0, 1], ticktext: ["special", "fragment", "whole word"] } };
    }
    if (P.freq) return { values: P.freq, title: "log10(1+count)", scale: "Viridis" };
    return { values: pts.length, title: "length (frequencies loading)", scale: "Viridis" };
  }

  async function loadFrequency(P) {
    for (let i = 0; i < 600; i++) {
      let r;
      try { r = await api("frequency", { space: P.info.index }); } catch (e) { return; }
      if (r.state === "ready") { P.freq = r.counts.map((c) => Math.log10(1 + c)); if (S.color === "frequency") draw(P); return; }
      if (r.state === "error") { P.progress.textContent = "frequencies: " + r.error; return; }
      await sleep(1000);
    }
  }

  // A word-axes map is computed on request (a second or two) from the four word boxes.
  async function loadAxes(P) {
    const dims = S.dims, a = S.axes;
    P.coords = null; P.axisTitles = null;
    if (!a.xa || !a.xb) { P.progress.textContent = "word axes: type two tokens for x (and optionally two for y), then apply"; return false; }
    const params = { space: P.info.index, xa: a.xa, xb: a.xb, dims };
    if (a.ya || a.yb) { params.ya = a.ya; params.yb = a.yb; }
    P.progress.textContent = "computing the word-axes map";
    let r;
    try { r = await api("axes", params); } catch (e) { P.progress.textContent = "word axes: " + e.message; return false; }
    if (S.method !== "axes" || dims !== S.dims) return false;
    const n = P.info.n, cols = [];
    for (let d = 0; d < dims; d++) cols.push(new Float32Array(n));
    r.coords.forEach((row, i) => { for (let d = 0; d < dims; d++) cols[d][i] = row[d]; });
    P.coords = { dims, cols };
    P.axisTitles = r.titles;
    P.progress.textContent = [r.formula, ...(r.notes || [])].join("; ");
    return true;
  }

  async function loadProjection(P) {
    if (S.method === "axes") return loadAxes(P);
    P.axisTitles = null;
    const method = S.method, dims = S.dims;
    const params = { space: P.info.index, method, dims };
    P.coords = null;
    const pre = prefetched("coords", P, "space=0&method=" + method + "&dims=" + dims);
    let buffer = pre ? await pre : null;
    if (buffer) api("projection", params).then((r) => { P.progress.textContent = (r.notes || []).join("; "); }).catch(() => null);
    for (; !buffer;) {
      if (method !== S.method || dims !== S.dims) return false;  // the user switched meanwhile
      const r = await api("projection", params);
      if (r.state === "ready") {
        P.progress.textContent = (r.notes || []).join("; ");
        break;
      }
      if (r.state === "error") { P.progress.textContent = "projection failed: " + r.error; return false; }
      P.progress.textContent = "computing " + r.label + " · " + r.state + " " + r.elapsed_s.toFixed(1) + " s";
      await sleep(500);
    }
    if (!buffer) {
      const resp = await fetch("/api/projection/data?" + new URLSearchParams(params).toString());
      if (!resp.ok) { P.progress.textContent = "projection unavailable"; return false; }
      buffer = await resp.arrayBuffer();
    }
    const buf = new Float32Array(buffer);
    const n = P.info.n, cols = [];
    for (let d = 0; d < dims; d++) cols.push(new Float32Array(n));
    for (let i = 0; i < n; i++) for (let d = 0; d < dims; d++) cols[d][i] = buf[i * dims + d];
    if (method !== S.method || dims !== S.dims) return false;
    P.coords = { dims, cols };
    return true;
  }

  function sub(P, rows) {
    const c = P.coords.cols, out = { x: [], y: [], z: [] };
    for (const r of rows) {
      if (r < 0) continue;
      out.x.push(c[0][r]); out.y.push(c[1][r]); if (c.length > 2) out.z.push(c[2][r]);
    }
    return out;
  }

  function trace(P, xyz, extra) {
    const t = Object.assign({ x: xyz.x, y: xyz.y, hoverinfo: "text" }, extra);
    if (S.dims === 3) { t.type = "scatter3d"; t.z = xyz.z; } else { t.type = "scattergl"; }
    return t;
  }

  function draw(P) {
    if (!P.coords || !P.points) return;
    const col = colorArray(P), cols = P.coords.cols, three = S.dims === 3, ov = P.overlays;
    const base = trace(P, { x: cols[0], y: cols[1], z: cols[2] }, {
      name: "tokens", mode: "markers", hovertext: P.hover,
      marker: { size: three ? 1.6 : 3, color: col.values, colorscale: col.scale, opacity: 0.55,
                colorbar: Object.assign({ title: { text: col.title }, thickness: 10 }, col.ticks || {}) },
    });
    const rowsText = (rows) => rows.filter((r) => r >= 0).map((r) => P.hover[r]);
    const rowsLabel = (rows) => rows.filter((r) => r >= 0).map((r) => escGL(P.points.display[r]));
    const data = [base];
    data.push(trace(P, sub(P, ov.search), { name: "search matches", mode: "markers", customdata: ov.search,
      hovertext: rowsText(ov.search), marker: { size: three ? 3 : 7, color: "#ff7f0e", line: { width: 0 } } }));
    const edges = { x: [], y: [], z: [] };
    if (ov.selected.length && ov.neighbors.length) {
      const s = sub(P, ov.selected), sx = s.x.reduce((a, b) => a + b, 0) / s.x.length,
        sy = s.y.reduce((a, b) => a + b, 0) / s.y.length, sz = three ? s.z.reduce((a, b) => a + b, 0) / s.z.length : 0;
      const nb = sub(P, ov.neighbors);
      for (let i = 0; i < nb.x.length; i++) {
        edges.x.push(sx, nb.x[i], null); edges.y.push(sy, nb.y[i], null); if (three) edges.z.push(sz, nb.z[i], null);
      }
    }
    data.push(trace(P, edges, { name: "edges", mode: "lines", hoverinfo: "skip", line: { color: "rgba(214,39,40,0.5)", width: 1 } }));
    data.push(trace(P, sub(P, ov.neighbors), { name: "neighbours", mode: "markers+text", customdata: ov.neighbors,
      hovertext: rowsText(ov.neighbors), text: rowsLabel(ov.neighbors), textposition: "top center",
      marker: { size: three ? 4 : 8, color: "#d62728" } }));
    data.push(trace(P, sub(P, ov.selected), { name: "selected", mode: "markers+text", customdata: ov.selected,
      hovertext: rowsText(ov.selected), text: rowsLabel(ov.selected), textposition: "bottom center",
      marker: { size: three ? 6 : 13, color: "#000" } }));
    data.push(trace(P, sub(P, ov.prompt), { name: "prompt", mode: "lines+markers+text", customdata: ov.prompt,
      hovertext: ov.prompt.map((r, i) => i + ": " + (r >= 0 ? P.hover[r] : "?")), text: ov.prompt.map((r, i) => String(i)),
      textposition: "middle right", line: { color: "rgba(44,160,44,0.6)", width: 1 }, marker: { size: three ? 4 : 9, color: "#2ca02c" } }));
    const tr = ov.trajectory;
    const txyz = tr ? { x: tr.coords.map((c) => c[0]), y: tr.coords.map((c) => c[1]), z: tr.coords.map((c) => c[2]) } : { x: [], y: [], z: [] };
    data.push(trace(P, txyz, { name: "trajectory", mode: "lines+markers+text",
      text: tr ? tr.layers.map((l) => "L" + l) : [], textposition: "top right",
      hovertext: tr ? tr.layers.map((l, i) => "layer " + l + " · nearest " + esc(tr.nearest[i].display) + " (" + tr.nearest[i].score.toFixed(3) + ")") : [],
      line: { color: "#9467bd", width: 2 }, marker: { size: three ? 3 : 7, color: "#9467bd" } }));
    const layout = {
      uirevision: S.method + S.dims, margin: { l: 30, r: 10, t: 10, b: 30 }, hovermode: "closest",
      showlegend: true, legend: { orientation: "h", y: -0.05 }, dragmode: three ? "orbit" : "zoom",
      xaxis: { zeroline: false, showgrid: false }, yaxis: { zeroline: false, showgrid: false },
    };
    if (P.axisTitles) { // word axes: say which tokens span each axis (Plotly text: esc())
      if (three) {
        layout.scene = { xaxis: { title: { text: esc(P.axisTitles[0]) } }, yaxis: { title: { text: esc(P.axisTitles[1]) } },
                         zaxis: { title: { text: esc(P.axisTitles[2] || "") } } };
      } else {
        layout.margin = { l: 50, r: 10, t: 10, b: 45 };
        layout.xaxis.title = { text: esc(P.axisTitles[0]) };
        layout.yaxis.title = { text: esc(P.axisTitles[1]) };
      }
    }
    const config = { displaylogo: false, responsive: true, scrollZoom: true };
    const started = performance.now();
    const baseKey = [S.method, S.dims, S.color, col.title, (P.axisTitles || []).join("|")].join("|");
    if (P.drawn && P.baseKey === baseKey && P.plot.data && P.plot.data.length === data.length) {
      // Only the overlays changed: restyle them and leave the 49k-point base trace alone (much faster).
      const keys = three ? ["x", "y", "z", "hovertext", "text", "customdata"] : ["x", "y", "hovertext", "text", "customdata"];
      const update = {};
      keys.forEach((k) => { update[k] = data.slice(1).map((t) => t[k] || []); });
      return Plotly.restyle(P.plot, update, [1, 2, 3, 4, 5, 6]).then(() => {
        P.plot.dataset.searchRows = String(ov.search.length);
        timings.lastDraw = performance.now() - started;
      });
    }
    P.baseKey = baseKey;
    return Plotly.react(P.plot, data, layout, config).then(() => {
      if (!P.drawn) {
        P.drawn = true;
        P.plot.on("plotly_click", (ev) => onClick(P, ev));
      }
      P.plot.dataset.drawn = String(P.coords.cols[0].length);
      P.plot.dataset.searchRows = String(ov.search.length);
      if (timings.firstPaint === null) {
        requestAnimationFrame(() => { timings.firstPaint = performance.now(); timings.lastDraw = performance.now() - started; });
      }
    });
  }

  function onClick(P, ev) {
    const pt = ev && ev.points && ev.points[0];
    if (!pt) return;
    let row = null;
    if (pt.curveNumber === TRACE.base) row = pt.pointNumber;
    else if (pt.customdata !== undefined && pt.customdata !== null) row = Number(pt.customdata);
    if (row === null || row < 0) return;
    selectToken("id:" + P.points.ids[row], P.info.index);
  }

  // -- selection: neighbours and variants, linked across panels ------------------------------------------
  function linkedQuery(q, fromIndex, P) {
    if (fromIndex === null || fromIndex === undefined || P.info.index === fromIndex) return q;
    const src = S.panels[fromIndex];
    const sameVocab = src.info.kind === "model" && P.info.kind === "model" && src.info.n === P.info.n;
    if (sameVocab || !q.startsWith("id:")) return q;
    const row = src.points.ids.indexOf(Number(q.slice(3)));
    if (row < 0) return q;
    return src.points.display[row].replace(/^[␣▁]+/, "").trim() || q;  // the word, for a space with other labels
  }

  function neighborTable(result, P) {
    const t = el("table", null, "nb");
    const head = el("tr"); ["#", "id", "token", "cosine"].forEach((h) => head.appendChild(el("th", h))); t.appendChild(head);
    result.neighbors.forEach((n, i) => {
      const tr = el("tr");
      tr.dataset.id = String(n.id); tr.dataset.row = String(result.rows[i]);
      tr.appendChild(el("td", i + 1, "num")); tr.appendChild(el("td", n.id, "num"));
      tr.appendChild(el("td", n.display, "tok")); tr.appendChild(el("td", n.score.toFixed(4), "num"));
      tr.addEventListener("click", () => selectToken("id:" + n.id, P.info.index));
      t.appendChild(tr);
    });
    return t;
  }

  async function selectToken(q, fromIndex) {
    S.token = q; writeHash();
    $("selection").hidden = false;
    const box = $("selection-panels"); clear(box);
    await Promise.all(S.panels.map(async (P) => {
      const part = el("div", null, "sel-panel"); part.dataset.panel = String(P.info.index);
      box.appendChild(part);
      const query = linkedQuery(q, fromIndex, P);
      if (S.panels.length > 1) part.appendChild(el("h3", P.info.title));
      try {
        const nb = await api("neighbors", { space: P.info.index, q: query, k: S.k });
        const head = el("p"); head.className = "selected-token";
        head.appendChild(el("span", nb.query_display.join(" + ") || query, "tok"));
        head.appendChild(el("span", "  ids " + nb.query_ids.join(", "), "note"));
        part.appendChild(head);
        if (nb.note) part.appendChild(el("p", nb.note, "note"));
        part.appendChild(el("p", "nearest " + nb.neighbors.length + " (cosine, " + nb.space + ")", "note"));
        const table = neighborTable(nb, P); table.classList.add("neighbors"); part.appendChild(table);
        P.overlays.selected = nb.query_rows; P.overlays.neighbors = nb.rows;
        const word = (nb.query_display[0] || "").replace(/^[␣▁]+/, "").trim();
        if (nb.query_rows.length === 1 && word) {
          try {
            const v = await api("variants", { space: P.info.index, q: word });
            part.appendChild(el("p", "variants of “" + word + "”", "note"));
            const vt = neighborTable(v, P); vt.classList.add("variants"); part.appendChild(vt);
          } catch (e) { part.appendChild(el("p", "no variants: " + e.message, "note")); }
        }
      } catch (e) {
        part.appendChild(el("p", query + ": " + e.message, "error"));
        P.overlays.selected = []; P.overlays.neighbors = [];
      }
      draw(P);
    }));
  }

  // -- search -------------------------------------------------------------------------------------------------
  async function runSearch() {
    S.search = $("search").value; S.mode = $("search-mode").value; writeHash();
    const list = $("search-list"); clear(list);
    if (!S.search) { $("search-results").hidden = true; S.panels.forEach((P) => { P.overlays.search = []; draw(P); }); return; }
    $("search-results").hidden = false;
    const summary = [];
    await Promise.all(S.panels.map(async (P) => {
      try {
        const r = await api("search", { space: P.info.index, q: S.search, mode: S.mode });
        P.overlays.search = r.rows;
        summary.push((S.panels.length > 1 ? P.info.title + ": " : "") + r.total.toLocaleString() + " matches");
        if (P.info.index === 0) {
          r.rows.slice(0, 200).forEach((row, i) => {
            const li = el("li"); li.dataset.row = String(row); li.dataset.id = String(P.points.ids[row]);
            li.appendChild(el("span", r.display[i], "tok"));
            li.addEventListener("click", () => selectToken("id:" + P.points.ids[row], 0));
            list.appendChild(li);
          });
        }
      } catch (e) {
        P.overlays.search = [];
        summary.push(e.message);
      }
      draw(P);
    }));
    $("search-summary").textContent = summary.join(" · ");
  }

  // -- clusters: found on the space's k-NN graph by the server; clicking one selects its tokens -----------
  async function runClusters() {
    const raw = $("clusters-n").value.trim() || "auto";
    const list = $("clusters-list"); clear(list);
    const P = S.panels[0];
    if (!P) return;
    for (;;) {
      let r;
      try { r = await api("clusters", { space: P.info.index, n: raw }); } catch (e) { $("clusters-summary").textContent = e.message; return; }
      if (r.state === "error") { $("clusters-summary").textContent = "clusters: " + r.error; return; }
      if (r.state === "ready") { showClusters(P, r); return; }
      $("clusters-summary").textContent = "finding clusters · " + r.state + " " + (r.elapsed_s || 0).toFixed(1) + " s";
      await sleep(500);
    }
  }
  function showClusters(P, r) {
    P.clusters = r;
    const list = $("clusters-list"); clear(list);
    $("clusters-summary").textContent = r.clusters.length + " clusters (" + r.method + " on the " + r.found_on +
      "); mean pairwise cosine, all tokens " + r.map_mean_cosine.toFixed(3);
    r.clusters.forEach((c) => {
      const li = el("li"); li.dataset.cluster = String(c.id);
      li.appendChild(el("span", c.label, "tok cluster-label"));
      li.appendChild(el("span", " · " + c.size.toLocaleString() + " tokens · cos " + c.mean_cosine.toFixed(3), "note"));
      li.addEventListener("click", () => selectCluster(P, c, li));
      list.appendChild(li);
    });
  }
  function selectCluster(P, c, li) {
    const rows = [];
    P.clusters.assignment.forEach((a, i) => { if (a === c.id) rows.push(i); });
    S.cluster = c.id;
    document.querySelectorAll("#clusters-list li").forEach((x) => x.classList.toggle("active", x === li));
    P.overlays.search = rows;
    $("search-results").hidden = false;
    $("search-summary").textContent = "cluster " + c.id + ": " + rows.length.toLocaleString() + " tokens";
    const list = $("search-list"); clear(list);
    rows.slice(0, 200).forEach((row) => {
      const item = el("li"); item.dataset.row = String(row); item.dataset.id = String(P.points.ids[row]);
      item.appendChild(el("span", P.points.display[row], "tok"));
      item.addEventListener("click", () => selectToken("id:" + P.points.ids[row], 0));
      list.appendChild(item);
    });
    return draw(P);
  }

  // -- prompt and trajectory ------------------------------------------------------------------------------
  async function placePrompt() {
    S.prompt = $("prompt-text").value; writeHash();
    const box = $("prompt-tokens"); clear(box);
    const sel = $("trajectory-pos"); clear(sel);
    $("trajectory-box").hidden = true;
    $("layers-box").hidden = true;
    if (!S.prompt.trim()) { S.panels.forEach((P) => { P.overlays.prompt = []; P.overlays.trajectory = null; draw(P); }); return; }
    for (const P of S.panels) {
      if (!P.info.has_tokenizer) { P.overlays.prompt = []; continue; }
      try {
        const r = await api("tokens", { space: P.info.index, text: S.prompt });
        P.overlays.prompt = r.rows;
        if (P === firstModel()) {
          r.tokens.forEach((t) => {
            const chip = el("span", t.position + " " + t.display, "tok"); chip.title = "id " + t.id; box.appendChild(chip);
          });
        }
      } catch (e) { box.appendChild(el("span", e.message, "error")); P.overlays.prompt = []; }
      draw(P);
    }
    const P = firstModel();
    if (P && P.info.causal) {
      // Trajectory positions count the prompt's non-special tokens (what hidden_states keeps).
      const r = await api("tokens", { space: P.info.index, text: S.prompt });
      const kept = r.tokens.filter((t) => !P.points.special[r.rows[t.position]]);
      kept.forEach((t, i) => { const o = el("option", i + ": " + t.display); o.value = String(i); sel.appendChild(o); });
      if (S.pos !== null && S.pos < kept.length) sel.value = String(S.pos);
      $("trajectory-box").hidden = kept.length === 0;
      $("layers-box").hidden = false;
    }
  }
  function firstModel() { return S.panels.find((P) => P.info.has_tokenizer) || null; }

  async function showTrajectory() {
    const P = firstModel(); if (!P) return;
    S.pos = Number($("trajectory-pos").value); writeHash();
    $("trajectory-note").textContent = "running the model…";
    try {
      const r = await api("trajectory", { space: P.info.index, text: S.prompt, position: S.pos, method: S.method, dims: S.dims });
      P.overlays.trajectory = r;
      $("trajectory-note").textContent = "“" + r.display + "” through layers " + r.layers[0] + "–" + r.layers[r.layers.length - 1] + ". " + r.note;
    } catch (e) {
      P.overlays.trajectory = null;
      $("trajectory-note").textContent = e.message;
    }
    draw(P);
  }

  // -- layers: the prompt's logit lens (rows = layers, columns = tokens); a click shows that state's neighbours --
  async function showLayers() {
    const P = S.panels.find((x) => x.info.causal); if (!P) return;
    const note = $("layers-note"); note.textContent = "decoding every layer…";
    clear($("layers-cell"));
    try {
      const r = await api("logit_lens", { space: P.info.index, text: S.prompt });
      drawLayers(P, r);
      note.textContent = (r.notes.length ? r.notes.join("; ") + ". " : "") + "Colour: probability of the top-1 token. " +
        "Click a cell for the nearest tokens of that state. " + r.semantics;
    } catch (e) { note.textContent = e.message; }
  }

  function drawLayers(P, r) {
    const text = [], hover = [], z = [];
    r.layers.forEach((layer, li) => {
      const trow = [], hrow = [], zrow = [];
      r.positions.forEach((pos, j) => {
        const top = r.top_display[li][j], probs = r.top_probs[li][j];
        trow.push(esc(top[0].length > 6 ? top[0].slice(0, 5) + "…" : top[0]));
        const nxt = pos + 1 < r.display.length ? esc(r.display[pos + 1]) + ": rank " + r.target_rank[li][j] : "(end of text)";
        hrow.push("layer " + layer + " · position " + pos + ": " + esc(r.display[pos]) + "<br>" +
          top.map((d, m) => (m + 1) + ". " + esc(d) + "  " + probs[m].toFixed(4)).join("<br>") + "<br>next token " + nxt);
        zrow.push(probs[0]);
      });
      text.push(trow); hover.push(hrow); z.push(zrow);
    });
    const data = [{ type: "heatmap", x: r.positions, y: r.layers, z: z, text: text, hovertext: hover, hoverinfo: "text",
      texttemplate: r.positions.length * r.layers.length <= 4000 ? "%{text}" : "", textfont: { size: 9 }, xgap: 1, ygap: 1,
      zmin: 0, zmax: 1, colorscale: "Viridis", colorbar: { title: { text: "p(top-1)" }, thickness: 10 } }];
    const plot = $("layers-plot");
    const layout = { margin: { l: 40, r: 10, t: 10, b: 80 }, height: Math.max(320, 40 + 14 * r.layers.length),
      width: Math.max(plot.clientWidth || 300, 110 + 26 * r.positions.length),  // wide prompts scroll sideways
      xaxis: { tickmode: "array", tickvals: r.positions, ticktext: r.positions.map((p) => esc(r.display[p])), tickangle: -60 },
      yaxis: { title: { text: "layer" } } };
    plot.dataset.layers = String(r.layers.length); plot.dataset.positions = String(r.positions.length);
    return Plotly.react(plot, data, layout, { displaylogo: false }).then(() => {
      if (!plot.dataset.bound) {
        plot.dataset.bound = "1";
        plot.on("plotly_click", (ev) => { const pt = ev && ev.points && ev.points[0]; if (pt) layerCell(pt.y, pt.x); });
      }
    });
  }

  async function layerCell(layer, position) {
    const P = S.panels.find((x) => x.info.causal); if (!P) return;
    const box = $("layers-cell"); clear(box);
    try {
      const r = await api("lens_nearest", { space: P.info.index, text: S.prompt, layer: layer, position: position, k: S.k });
      const head = el("p", null, "selected-token");
      head.appendChild(el("span", "layer " + r.layer + " · position " + r.position + " ", "note"));
      head.appendChild(el("span", r.display, "tok"));
      box.appendChild(head);
      box.appendChild(el("p", "decodes to: " + r.top.map((t) => t.display + " " + t.prob.toFixed(3)).join(" · "), "note"));
      box.appendChild(el("p", "nearest " + r.neighbors.length + " tokens of this state (cosine, " + r.space + ")", "note"));
      const table = neighborTable(r, P); table.classList.add("layer-neighbors"); box.appendChild(table);
      P.overlays.neighbors = r.rows; P.overlays.selected = [];
      draw(P);
    } catch (e) { box.appendChild(el("p", e.message, "error")); }
  }

  // -- grid view ------------------------------------------------------------------------------------------------
  async function runGrid() {
    const P = S.panels.find((x) => x.info.causal);
    const note = $("grid-status");
    if (!P) { note.textContent = "the grid view needs a causal language model"; return; }
    const params = { space: P.info.index, layer: $("grid-layer").value, plane: $("grid-plane").value, size: $("grid-size").value };
    if (params.plane === "tokens") params.plane_tokens = $("grid-tokens").value;
    for (;;) {
      let r;
      try { r = await api("grid", params); } catch (e) { note.textContent = e.message; return; }
      if (r.state === "ready") { drawGrid(r.grid); note.textContent = r.grid.semantics || ""; return; }
      if (r.state === "error") { note.textContent = r.error; return; }
      note.textContent = r.label + " · " + r.state + " " + r.elapsed_s.toFixed(1) + " s";
      await sleep(700);
    }
  }

  function drawGrid(g) {
    const n = g.grid_size, text = [], hover = [];
    for (let i = 0; i < n; i++) {
      const trow = [], hrow = [];
      for (let j = 0; j < n; j++) {
        const c = i * n + j;
        trow.push(esc(g.top5_display[c][0]));
        hrow.push(g.top5_display[c].map((d, m) => esc(d) + "  " + (100 * g.top5_probs[c][m]).toFixed(1) + "%").join("<br>"));
      }
      text.push(trow); hover.push(hrow);
    }
    const data = [{ type: "heatmap", x: g.x, y: g.y, z: g.probs, text: text, hovertext: hover, hoverinfo: "text",
      texttemplate: n <= 32 ? "%{text}" : "", colorscale: "Viridis", colorbar: { title: { text: "p(top-1)" }, thickness: 10 } }];
    Plotly.react($("grid-plot"), data, { margin: { l: 40, r: 10, t: 30, b: 30 }, title: { text: "layer " + g.layer + " · " + g.method } },
      { displaylogo: false, responsive: true });
  }

  // -- jobs -------------------------------------------------------------------------------------------------------
  async function pollJobs() {
    try {
      const r = await api("jobs");
      const ul = $("jobs"); clear(ul);
      r.jobs.forEach((j) => ul.appendChild(el("li", j.label + " · " + j.state + (j.state === "running" ? " " + j.elapsed_s.toFixed(0) + " s" : "") + (j.error ? " · " + j.error : ""))));
    } catch (e) { /* the page keeps working without it */ }
    setTimeout(pollJobs, 2000);
  }

  // -- start-up ---------------------------------------------------------------------------------------------------
  async function reloadMaps() {
    writeHash();
    await Promise.all(S.panels.map(async (P) => { if (await loadProjection(P)) await draw(P); }));
  }

  async function applyState() {
    await reloadMaps();
    if (S.search) await runSearch();
    if (S.token) await selectToken(S.token, null);
    if (S.prompt) { await placePrompt(); if (S.pos !== null) await showTrajectory(); }
  }

  async function main() {
    try {
      const pre = window.embedlensPrefetch && window.embedlensPrefetch.info;
      S.info = (pre && await pre.catch(() => null)) || await api("info");
    } catch (e) { status("cannot reach the embedlens server: " + e.message); return; }
    S.info.panels.forEach((info) => S.panels.push(makePanel(info)));
    const plane = $("grid-plane");
    S.info.grid_planes.forEach((p) => { const o = el("option", p); o.value = p; plane.appendChild(o); });
    plane.value = "pca";
    const model = S.panels.find((P) => P.info.causal);
    if (model) { $("grid-layer").max = String(model.info.n_layers); $("grid-layer").value = String(Math.floor(model.info.n_layers / 2)); }
    else { $("grid").hidden = true; }
    readHash();
    // Labels and coordinates are fetched together: the first paint waits for the slower of the two.
    writeHash();
    const loaded = await Promise.all(S.panels.map(async (P) => {
      const [, ok] = await Promise.all([loadPoints(P), loadProjection(P)]);
      if (ok) await draw(P);
      return ok;
    }));
    S.panels.forEach((P) => loadFrequency(P));
    if (loaded.some((ok) => !ok)) await reloadMaps();
    if (S.search) await runSearch();
    if (S.token) await selectToken(S.token, null);
    if (S.prompt) { await placePrompt(); if (S.pos !== null) await showTrajectory(); }
    S.ready = true;
    document.body.dataset.ready = "1";

    $("method").addEventListener("change", () => {
      S.method = $("method").value;
      $("axes-form").hidden = S.method !== "axes";
      reloadMaps();
    });
    $("axes-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      for (const key of ["xa", "xb", "ya", "yb"]) S.axes[key] = $("axis-" + key).value.trim();
      reloadMaps();
    });
    $("clusters-form").addEventListener("submit", (ev) => { ev.preventDefault(); runClusters(); });
    $("dims").addEventListener("change", () => {
      S.dims = Number($("dims").value);
      S.panels.forEach((P) => { P.overlays.trajectory = null; });
      reloadMaps();
    });
    $("color").addEventListener("change", () => { S.color = $("color").value; writeHash(); S.panels.forEach(draw); });
    $("k").addEventListener("change", () => {
      const k = Number($("k").value);
      if (Number.isInteger(k) && k >= 1 && k <= 200) { S.k = k; if (S.token) selectToken(S.token, null); else writeHash(); }
    });
    $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(); });
    $("prompt-form").addEventListener("submit", (ev) => { ev.preventDefault(); S.pos = null; placePrompt(); });
    $("trajectory-btn").addEventListener("click", showTrajectory);
    $("layers-btn").addEventListener("click", showLayers);
    $("grid-plane").addEventListener("change", () => { $("grid-tokens").hidden = $("grid-plane").value !== "tokens"; });
    $("grid-form").addEventListener("submit", (ev) => { ev.preventDefault(); runGrid(); });
    window.addEventListener("hashchange", () => {
      const before = S.method + S.dims;
      readHash();
      if (S.method + S.dims !== before) applyState(); else {
        if (S.search) runSearch();
        if (S.token) selectToken(S.token, null);
      }
    });
    pollJobs();
  }

  window.embedlens.selectToken = selectToken;
  window.embedlens.runClusters = runClusters;
  window.embedlens.esc = esc;
  document.addEventListener("DOMContentLoaded", main);
})();
