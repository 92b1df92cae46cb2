// embedlens explorer: the maps (drawn by the shared WebGL component EmbedlensMap, render/static/pointcloud.js),
// search, a token's neighbours, clusters, the prompt, and start-up. Token strings are untrusted: textContent only.
"use strict";

(function () {
  const E = window.embedlens;
  const S = E.state;
  const { $, el, clear, api, status, fmt } = E;
  const METHOD_NAMES = { pca: "PCA", tsne: "t-SNE", umap: "UMAP", axes: "word axes" };
  const COLORS = ["frequency", "faithfulness", "length", "word", "script", "cluster", "changed"];

  // -- URL hash state ------------------------------------------------------------------------------------
  E.writeHash = function () {
    if (!S.panels.length || !S.method) return;
    const p = new URLSearchParams();
    p.set("model", S.panels.map((x) => x.info.title).join("|"));
    p.set("method", S.method); p.set("dims", String(S.dims)); p.set("color", S.color); p.set("k", String(S.k));
    if (S.method === "axes") for (const key of ["xa", "xb", "ya", "yb"]) if (S.axes[key]) p.set(key, S.axes[key]);
    if (S.view !== "map") p.set("view", S.view);
    if (!S.labels) p.set("labels", "0");
    if (S.contours) p.set("contours", "1");
    if (S.token) p.set("token", S.token);
    if (S.search) { p.set("search", S.search); p.set("mode", S.mode); }
    if (S.prompt) p.set("prompt", S.prompt);
    if (S.pos !== null && S.prompt) p.set("pos", String(S.pos));
    const sel = E.selection.link();
    if (sel) p.set("sel", sel);
    const h = "#" + p.toString();
    if (location.hash !== h) history.replaceState(null, "", h);
    $("permalink").href = location.href;
  };
  // Reads the link into S; true when it names a map (else the server's default map is shown).
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const named = ["pca", "tsne", "umap", "axes"].includes(p.get("method"));
    if (named) S.method = p.get("method");
    for (const key of ["xa", "xb", "ya", "yb"]) { S.axes[key] = p.get(key) || ""; $("axis-" + key).value = S.axes[key]; }
    if (["2", "3"].includes(p.get("dims"))) S.dims = Number(p.get("dims"));
    if (COLORS.includes(p.get("color"))) S.color = p.get("color");
    const k = Number(p.get("k")); if (Number.isInteger(k) && k >= 1 && k <= 200) S.k = k;
    S.view = E.views.VIEWS.includes(p.get("view")) ? p.get("view") : "map";
    S.labels = p.get("labels") !== "0"; S.contours = p.get("contours") === "1";
    S.token = p.get("token") || null;
    S.search = p.get("search") || ""; S.mode = p.get("mode") === "regex" ? "regex" : "text";
    S.prompt = p.get("prompt") || "";
    const pos = Number(p.get("pos")); S.pos = p.has("pos") && Number.isInteger(pos) && pos >= 0 ? pos : null;
    S.sel = p.get("sel") || "";
    $("color").value = S.color; $("k").value = String(S.k); $("search").value = S.search; $("search-mode").value = S.mode;
    $("prompt-text").value = S.prompt; $("labels-on").checked = S.labels; $("contours-on").checked = S.contours;
    const want = p.get("model");
    if (want && S.panels.length && want !== S.panels.map((x) => x.info.title).join("|")) {
      status("this link was made for " + want + "; this server shows " + S.panels.map((x) => x.info.title).join(", "));
    }
    return named;
  }
  function syncControls() {
    $("method").value = S.method; $("dims").value = String(S.dims);
    $("axes-form").hidden = S.method !== "axes";
    document.querySelectorAll("#tools button").forEach((b) => { b.disabled = S.dims === 3; b.classList.toggle("active", b.dataset.tool === S.tool); });
  }

  // -- panels ----------------------------------------------------------------------------------------------
  function makePanel(info) {
    const root = el("div", null, "panel");
    root.dataset.panel = String(info.index);
    const head = el("div", null, "panel-head");
    head.appendChild(el("h2", info.title + " · " + fmt(info.n) + " tokens"));
    const hover = el("span", "", "hover-readout tok"); hover.id = "hover-" + info.index; hover.setAttribute("aria-live", "polite");
    head.appendChild(hover);
    const plot = el("div", null, "plot"); plot.id = "plot-" + info.index;
    const legend = el("div", null, "legend"); const notice = el("div", null, "notice"); notice.hidden = true;
    const caption = el("p", "", "caption");
    plot.appendChild(legend); plot.appendChild(notice);
    root.appendChild(head); root.appendChild(plot); root.appendChild(caption);
    $("maps").appendChild(root);
    return { info, root, plot, legend, notice, caption, hoverEl: hover, points: null, coords: null, dims: 2, map: null,
             freq: null, faith: null, clusters: null, notes: [],
             overlays: { search: [], neighbors: [], selected: [], prompt: [], trajectory: null, truth: null } };
  }

  // The first panel's labels and coordinates may already be on their way (boot.js).
  function prefetched(name, P, key) {
    const pre = window.embedlensPrefetch;
    if (!pre || P.info.index !== 0 || !pre[name]) return null;
    if (key !== undefined && pre.key !== key) return null;
    const promise = pre[name];
    pre[name] = null;  // use once
    return promise.catch(() => null);
  }

  async function loadPoints(P) {
    const pre = prefetched("points", P);
    P.points = (pre && await pre) || await api("points", { space: P.info.index });
    E.timings.points = E.timings.points || performance.now();
  }

  async function loadFrequency(P) {
    try {
      const r = await E.poll("frequency", { space: P.info.index }, null, null, 1000);
      P.freq = Int32Array.from(r.counts);
      P.priority = null;
      if (S.color === "frequency") paint(P);
      labels(P);
      if (P === E.activePanel()) E.filters.build();
      E.selection.refresh();
    } catch (e) { P.caption.textContent = "frequencies: " + e.message; }
  }

  // A word-axes map is computed on request (a second or two) from the four word boxes.
  async function loadAxes(P) {
    const dims = S.dims, a = S.axes;
    if (!a.xa || !a.xb) { P.caption.textContent = "word axes: type two tokens for x (and optionally two for y), then apply"; return null; }
    const params = { space: P.info.index, xa: a.xa, xb: a.xb, dims };
    if (a.ya || a.yb) { params.ya = a.ya; params.yb = a.yb; }
    P.caption.textContent = "computing the word-axes map";
    let r;
    try { r = await api("axes", params); } catch (e) { P.caption.textContent = "word axes: " + e.message; return null; }
    if (S.method !== "axes" || dims !== S.dims) return null;
    const coords = new Float32Array(r.coords.length * dims);
    r.coords.forEach((row, i) => { for (let d = 0; d < dims; d++) coords[i * dims + d] = row[d]; });
    P.notes = [r.formula, ...(r.notes || [])];
    P.axisTitles = r.titles;
    return coords;
  }

  async function fetchProjection(P, method, dims, onState) {
    const params = { space: P.info.index, method, dims };
    const pre = prefetched("coords", P, "space=0&method=" + method + "&dims=" + dims);
    let buffer = pre ? await pre : null;
    const r = await E.poll("projection", params, onState, () => buffer === null && method === S.method && dims === S.dims, 500);
    if (r) P.notes = r.notes || [];
    if (!buffer) {
      if (!r) return null;
      buffer = await E.binary("projection/data", params);
    }
    return new Float32Array(buffer);
  }

  async function loadProjection(P) {
    const method = S.method, dims = S.dims;
    P.axisTitles = null;
    let coords;
    try {
      coords = method === "axes" ? await loadAxes(P) : await fetchProjection(P, method, dims, (r) => {
        P.caption.textContent = "computing " + r.label + " · " + r.state + " " + (r.elapsed_s || 0).toFixed(1) + " s";
      });
    } catch (e) { P.caption.textContent = "projection failed: " + e.message; return false; }
    if (!coords || method !== S.method || dims !== S.dims) return false;
    P.coords = coords; P.dims = dims; P.method = method;
    E.timings.coords = E.timings.coords || performance.now();
    return true;
  }

  // -- drawing ---------------------------------------------------------------------------------------------
  function pointSize(n, dims) { return dims === 3 ? 2 : n > 150_000 ? 2 : n > 20_000 ? 3 : n > 2_000 ? 4 : 6; }

  function draw(P) {
    if (!P.coords || !P.points) return;
    const started = performance.now();
    const { colors, legend } = E.colouring(P);
    if (!P.map) {
      P.map = window.EmbedlensMap.create(P.plot, {
        dims: P.dims, coords: P.coords, display: P.points.display, colors, size: pointSize(P.points.ids.length, P.dims),
        hover: (row) => [P.points.display[row], details(P, row)], labels: null, contours: S.contours, background: "#fff",
      });
      P.map.on("hover", (row) => hoverReadout(P, row));
      P.map.on("hover", (row) => linkHover(P, row));
      P.map.on("click", (row, ev) => { if (row >= 0 && !(ev && ev.shiftKey)) clickToken(P, row); });
      P.map.on("select", (rows) => E.selection.set(P, rows, { fromMap: true }));
      P.map.setTool(S.dims === 3 ? "pan" : S.tool);
    } else {
      P.map.setCoords(P.coords, P.dims);
      P.map.setColors(colors);
    }
    E.drawLegend(P.legend, legend);
    P.map.setAxes(P.axisTitles || []);  // word axes: which tokens span each axis
    P.map.showLabels(S.labels); P.map.showContours(S.contours);
    labels(P);
    drawOverlays(P);
    if (P === E.activePanel()) E.filters.update();
    const sel = E.selection.panel() === P ? E.selection.rows() : [];
    if (sel.length) P.map.select(sel);
    caption(P);
    if (!P.plot.clientWidth) P.unframed = true;
    P.plot.dataset.drawn = String(P.points.ids.length);
    P.plot.dataset.method = P.method; P.plot.dataset.dims = String(P.dims);
    E.timings.lastDraw = performance.now() - started;
    if (E.timings.firstPaint === null) requestAnimationFrame(() => { E.timings.firstPaint = performance.now(); });
  }

  function paint(P) {
    if (!P.map) return;
    const { colors, legend } = E.colouring(P);
    P.map.setColors(colors);
    E.drawLegend(P.legend, legend);
  }

  function drawOverlays(P) {
    if (!P.map) return;
    const ov = P.overlays, ok = (rows) => rows.filter((r) => r >= 0);
    P.map.setOverlay("search", ov.search, { color: "#ff7f0e", size: 7, label: ov.search.length <= 40 });
    P.map.setOverlay("neighbors", ok(ov.neighbors), { color: "#d62728", size: 8, label: true });
    P.map.setOverlay("selected", ok(ov.selected), { color: "#000000", size: 12, label: true });
    P.map.setOverlay("prompt", ok(ov.prompt), { color: "#2ca02c", size: 9, label: true });
    P.map.setOverlay("trajectory", ov.trajectory ? ov.trajectory.nearest.map((x) => x.row) : [], { color: "#9467bd", size: 9, label: true });
    P.map.setLines(ov.truth ? ov.truth.rows.map((r) => [ov.truth.row, r]) : null, { color: "#d62728" });
    P.plot.dataset.searchRows = String(ov.search.length);
  }
  E.drawOverlays = drawOverlays;

  // The clusters as zoom-dependent labels: clusters, then sub-clusters, then the frequent tokens in view.
  function labels(P) {
    if (!P.map) return;
    if (P.freq && !P.priority) {
      const f = P.freq;
      P.priority = Int32Array.from(f.keys()).filter((r) => f[r] > 0).sort((a, b) => f[b] - f[a] || a - b);
    }
    let levels = [];
    if (P.clusters) {
      levels = P.clusters.levels && P.clusters.levels.length ? P.clusters.levels : [oneLevel(P.clusters)];
    }
    P.map.setLabels(levels.length || P.priority ? { levels, tokenPriority: P.priority || null } : null);
    P.map.showLabels(S.labels);
  }
  function oneLevel(r) {  // /api/clusters without levels: one level from its clusters
    const top = r.clusters.reduce((m, c) => Math.max(m, c.id), -1), names = new Array(top + 1).fill(""), sizes = new Array(top + 1).fill(0);
    r.clusters.forEach((c) => { names[c.id] = c.label; sizes[c.id] = c.size; });
    return { name: "clusters", assignment: r.assignment, labels: names, sizes };
  }

  function caption(P) {
    const parts = [METHOD_NAMES[P.method] + " " + P.dims + "D map of " + P.info.title];
    if (P.faith && P.faith.state === "ready") {
      parts.push("recall@" + P.faith.k + " " + Number(P.faith.recall).toFixed(3) + ": on average " +
        (100 * P.faith.recall).toFixed(0) + "% of a token's " + P.faith.k + " nearest neighbours in the full space are among its " +
        P.faith.k + " nearest on this map (" + fmt(P.faith.queries) + " seeded tokens; colour by local faithfulness to see where)");
    } else if (P.faith && P.faith.state) parts.push("faithfulness: " + P.faith.state);
    P.caption.textContent = parts.concat(P.notes || []).join(" · ");
  }

  async function loadFaithfulness(P) {
    if (P.method === "axes") { P.faith = null; return; }
    const key = P.method + P.dims;
    P.faith = { state: "queued", key };
    try {
      const r = await E.poll("faithfulness", { space: P.info.index, method: P.method, dims: P.dims },
        (s) => { if (P.faith && P.faith.key === key) { P.faith.state = s.state; caption(P); } },
        () => P.faith && P.faith.key === key, 1000);
      if (!r || !P.faith || P.faith.key !== key) return;
      P.faith = Object.assign(r, { state: "ready", key });
      caption(P);
      if (S.color === "faithfulness") paint(P);
      E.selection.refresh();
    } catch (e) { if (P.faith && P.faith.key === key) { P.faith = { state: e.status === 404 ? null : "unavailable (" + e.message + ")", key }; caption(P); } }
  }

  // The tooltip's second line: what the page knows about a token (text only).
  function details(P, row) {
    const parts = ["id " + P.points.ids[row]];
    if (P.freq) parts.push("count " + fmt(P.freq[row]));
    if (P.clusters && P.clusters.assignment[row] >= 0) {
      const c = P.clusters.clusters.find((x) => x.id === P.clusters.assignment[row]);
      if (c) parts.push("cluster " + c.label);
    }
    if (P.faith && P.faith.local_recall) parts.push("local recall " + Number(P.faith.local_recall[row]).toFixed(1));
    return parts.join(" · ");
  }

  function hoverReadout(P, row) {
    if (row < 0) { P.hoverEl.textContent = ""; delete P.hoverEl.dataset.row; return; }
    P.hoverEl.dataset.row = String(row);
    P.hoverEl.textContent = P.points.display[row];
    P.hoverEl.title = "id " + P.points.ids[row] + (P.freq ? " · count " + fmt(P.freq[row]) : "");
  }

  // -- two panels: the same token on both, and how much its neighbourhood changed (/api/compare, a job) -------
  function linkHover(P, row) {
    const Q = S.panels.find((x) => x !== P);
    if (!Q || !Q.map || !P.link) return;
    const other = row >= 0 ? P.link[row] : -1;
    Q.map.setOverlay("linked", other >= 0 ? [other] : [], { color: "#d62728", size: 12, label: true });
  }

  async function loadComparison() {
    const [A, B] = S.panels;
    try {
      const r = await E.poll("compare", {}, null, null, 2000);
      const link = [A, B].map((P) => new Int32Array(P.points.ids.length).fill(-1));
      const change = [A, B].map((P) => new Float32Array(P.points.ids.length).fill(NaN));
      r.rows_a.forEach((ra, i) => {
        const rb = r.rows_b[i];
        link[0][ra] = rb; link[1][rb] = ra;
        change[0][ra] = change[1][rb] = 1 - r.overlap[i];
      });
      [A, B].forEach((P, j) => { P.link = link[j]; P.change = change[j]; });
      S.comparison = { k: r.k, n_shared: r.n_shared };
      if (S.color === "changed") S.panels.forEach(paint);
    } catch (e) { B.caption.textContent = "comparison of the two spaces: " + e.message; }
  }

  function notice(P, text) {
    P.notice.textContent = text; P.notice.hidden = false;
    clearTimeout(P.noticeTimer);
    P.noticeTimer = setTimeout(() => { P.notice.hidden = true; }, 8000);
  }

  // -- a token: its neighbours and variants in the side bar, lines to its true neighbours on the map --------
  E.neighborTable = function (result, P) {
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
  };

  function linkedQuery(q, fromIndex, P) {
    if (fromIndex === null || fromIndex === undefined || P.info.index === fromIndex) return q;
    const src = S.panels[fromIndex];
    const sameVocab = src.info.kind === "model" && P.info.kind === "model" && src.info.n === P.info.n;
    if (sameVocab || !q.startsWith("id:")) return q;
    const row = src.points.ids.indexOf(Number(q.slice(3)));
    if (row < 0) return q;
    return src.points.display[row].replace(/^[␣▁]+/, "").trim() || q;  // the word, for a space with other labels
  }

  async function clickToken(P, row) {
    await selectToken("id:" + P.points.ids[row], P.info.index);
  }

  // Lines from a token to its 10 true nearest neighbours, wherever the map put them.
  async function trueNeighbors(P, row) {
    try {
      const r = await api("true_neighbors", { space: P.info.index, row, k: 10 });
      P.overlays.truth = { row, rows: r.rows };
    } catch (e) {
      P.overlays.truth = null;
    }
    drawOverlays(P);
  }

  async function selectToken(q, fromIndex) {
    S.token = q; E.writeHash();
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
        part.appendChild(el("p", "nearest " + nb.neighbors.length + " (cosine, " + nb.space + "); red lines on the map: the 10 nearest", "note"));
        const table = E.neighborTable(nb, P); table.classList.add("neighbors"); part.appendChild(table);
        P.overlays.selected = nb.query_rows; P.overlays.neighbors = nb.rows;
        if (nb.query_rows.length === 1 && nb.query_rows[0] >= 0) trueNeighbors(P, nb.query_rows[0]); else P.overlays.truth = null;
        const word = (nb.query_display[0] || "").replace(/^[␣▁]+/, "").trim();
        if (nb.query_rows.length === 1 && word && !E.offline) {  // variants search the vocabulary: a server's job
          try {
            const v = await api("variants", { space: P.info.index, q: word });
            part.appendChild(el("p", "variants of “" + word + "”", "note"));
            const vt = E.neighborTable(v, P); vt.classList.add("variants"); part.appendChild(vt);
          } catch (e) { part.appendChild(el("p", "no variants: " + e.message, "note")); }
        }
      } catch (e) {
        part.appendChild(el("p", query + ": " + e.message, "error"));
        P.overlays.selected = []; P.overlays.neighbors = []; P.overlays.truth = null;
      }
      drawOverlays(P);
    }));
  }

  // -- search: exact matches first (the token itself, then with a leading space), then the rest ---------------
  function searchOrder(P, rows, q) {
    const d = P.points.display, f = P.freq, want = q.toLowerCase();
    const bare = (s) => s.replace(/^[␣▁Ġ]+/, "");
    const tier = (r) => (d[r] === q ? 0 : bare(d[r]) === q ? 1 : bare(d[r]).toLowerCase() === want ? 2
      : bare(d[r]).toLowerCase().startsWith(want) ? 3 : 4);
    const t = new Map(rows.map((r) => [r, tier(r)]));
    return rows.slice().sort((a, b) => t.get(a) - t.get(b) || (f ? f[b] - f[a] : 0) || d[a].length - d[b].length || a - b)
      .map((r) => ({ row: r, tier: t.get(r) }));
  }

  async function runSearch() {
    S.search = $("search").value; S.mode = $("search-mode").value; E.writeHash();
    const list = $("search-list"); clear(list);
    if (!S.search) { $("search-results").hidden = true; S.panels.forEach((P) => { P.overlays.search = []; drawOverlays(P); }); return; }
    $("search-results").hidden = false;
    const summary = [];
    await Promise.all(S.panels.map(async (P) => {
      try {
        const r = await api("search", { space: P.info.index, q: S.search, mode: S.mode });
        P.overlays.search = r.rows;
        const ordered = S.mode === "text" ? searchOrder(P, r.rows, S.search) : r.rows.map((row) => ({ row, tier: 4 }));
        const exact = ordered.filter((x) => x.tier <= 2).length;
        summary.push((S.panels.length > 1 ? P.info.title + ": " : "") + fmt(r.total) + " matches" +
          (S.mode === "text" ? " · " + fmt(exact) + " exact" : ""));
        if (P.info.index === 0) {
          let last = -1;
          ordered.slice(0, 200).forEach(({ row, tier }) => {
            const group = tier <= 2 ? 0 : 1;
            if (S.mode === "text" && group !== last) {
              list.appendChild(el("li", group === 0 ? "exact" : "containing the text", "group"));
              last = group;
            }
            const li = el("li"); li.dataset.row = String(row); li.dataset.id = String(P.points.ids[row]);
            li.appendChild(el("span", P.points.display[row], "tok"));
            if (P.freq) li.appendChild(el("span", " " + fmt(P.freq[row]), "note"));
            li.addEventListener("click", () => selectToken("id:" + P.points.ids[row], 0));
            list.appendChild(li);
          });
          if (ordered.length > 200) list.appendChild(el("li", "… and " + fmt(ordered.length - 200) + " more on the map", "group"));
        }
      } catch (e) {
        P.overlays.search = [];
        summary.push(e.message);
      }
      drawOverlays(P);
    }));
    $("search-summary").textContent = summary.join(" · ");
  }

  // -- clusters: found on the space's k-NN graph by the server; labels on the map; a click selects one -------
  async function runClusters() {
    const raw = $("clusters-n").value.trim() || "auto";
    const P = S.panels[0];
    if (!P) return;
    try {
      const r = await E.poll("clusters", { space: P.info.index, n: raw },
        (s) => { $("clusters-summary").textContent = "finding clusters · " + s.state + " " + (s.elapsed_s || 0).toFixed(1) + " s"; }, null, 500);
      showClusters(P, r);
    } catch (e) { $("clusters-summary").textContent = "clusters: " + e.message; }
  }
  function showClusters(P, r) {
    P.clusters = r; P.clusterLabel = null;
    const list = $("clusters-list"); clear(list);
    $("clusters-summary").textContent = r.clusters.length + " clusters (" + r.method + " on the " + r.found_on +
      "); mean pairwise cosine, all tokens " + r.map_mean_cosine.toFixed(3) + ". Click one to select its tokens.";
    r.clusters.forEach((c) => {
      const li = el("li"); li.dataset.cluster = String(c.id);
      li.appendChild(el("span", c.label, "tok cluster-label"));
      li.appendChild(el("span", " · " + fmt(c.size) + " tokens · cos " + c.mean_cosine.toFixed(3), "note"));
      li.addEventListener("click", () => selectCluster(P, c, li));
      list.appendChild(li);
    });
    labels(P);
    if (S.color === "cluster") paint(P);
    if (P === E.activePanel()) E.filters.build();
    E.selection.refresh();
  }
  function selectCluster(P, c, li) {
    const rows = [];
    P.clusters.assignment.forEach((a, i) => { if (a === c.id) rows.push(i); });
    document.querySelectorAll("#clusters-list li").forEach((x) => x.classList.toggle("active", x === li));
    E.selection.set(P, rows);
  }

  // -- prompt and trajectory ------------------------------------------------------------------------------
  async function placePrompt() {
    S.prompt = $("prompt-text").value; E.writeHash();
    const box = $("prompt-tokens"); clear(box);
    const sel = $("trajectory-pos"); clear(sel);
    $("trajectory-box").hidden = true;
    $("layers-btn").hidden = true;
    if (!S.prompt.trim()) { S.panels.forEach((P) => { P.overlays.prompt = []; P.overlays.trajectory = null; drawOverlays(P); }); return; }
    let first = null;
    for (const P of S.panels) {
      if (!P.info.has_tokenizer) { P.overlays.prompt = []; continue; }
      try {
        const r = await api("tokens", { space: P.info.index, text: S.prompt });
        P.overlays.prompt = r.rows;
        if (P === firstModel()) {
          first = r;
          r.tokens.forEach((t) => { const chip = el("span", t.position + " " + t.display, "tok"); chip.title = "id " + t.id; box.appendChild(chip); });
        }
      } catch (e) { box.appendChild(el("span", e.message, "error")); P.overlays.prompt = []; }
      drawOverlays(P);
    }
    const P = firstModel();
    if (P && P.info.causal && first) {
      // Trajectory positions count the prompt's non-special tokens (what hidden_states keeps).
      const kept = first.tokens.filter((t) => !P.points.special[first.rows[t.position]]);
      kept.forEach((t, i) => { const o = el("option", i + ": " + t.display); o.value = String(i); sel.appendChild(o); });
      if (S.pos !== null && S.pos < kept.length) sel.value = String(S.pos);
      $("trajectory-box").hidden = kept.length === 0;
      $("layers-btn").hidden = false;
    }
  }
  function firstModel() { return S.panels.find((P) => P.info.has_tokenizer) || null; }

  async function showTrajectory() {
    const P = firstModel(); if (!P) return;
    S.pos = Number($("trajectory-pos").value); E.writeHash();
    $("trajectory-note").textContent = "running the model…";
    try {
      const r = await api("trajectory", { space: P.info.index, text: S.prompt, position: S.pos, method: S.method, dims: S.dims });
      P.overlays.trajectory = r;
      $("trajectory-note").textContent = "“" + r.display + "” through layers " + r.layers[0] + "–" + r.layers[r.layers.length - 1] +
        ": purple points are each layer's nearest token (" + r.nearest.map((x) => x.display).join(" → ") + "). " + r.note;
    } catch (e) {
      P.overlays.trajectory = null;
      $("trajectory-note").textContent = e.message;
    }
    drawOverlays(P);
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

  // -- maps: load, swap in the pending t-SNE -----------------------------------------------------------------
  async function reloadMaps() {
    syncControls(); E.writeHash();
    await Promise.all(S.panels.map(async (P) => {
      if (await loadProjection(P)) { draw(P); loadFaithfulness(P); }
    }));
  }

  // The server opened on PCA and queued a t-SNE: swap it in when ready, unless the user picked a map meanwhile.
  async function awaitPending(P, pending, dims, from) {
    try {
      const r = await E.poll("projection", { space: P.info.index, method: pending, dims }, null,
        () => S.method === from && S.dims === dims, 1500);
      if (!r || S.method !== from || S.dims !== dims) return;
      S.method = pending;
      await reloadMaps();
      notice(P, "the " + METHOD_NAMES[pending] + " map is ready and replaced " + METHOD_NAMES[from] +
        " (the map menu switches back)");
    } catch (e) { /* PCA stays */ }
  }

  async function main() {
    try {
      const pre = window.embedlensPrefetch && window.embedlensPrefetch.info;
      S.info = (pre && await pre.catch(() => null)) || await api("info");
    } catch (e) { status("cannot reach the embedlens server: " + e.message); return; }
    E.timings.info = performance.now();
    if (!window.EmbedlensMap) { status("the map component (pointcloud.js) did not load"); return; }
    S.info.panels.forEach((info) => S.panels.push(makePanel(info)));
    const plane = $("grid-plane");
    S.info.grid_planes.forEach((p) => { const o = el("option", p); o.value = p; plane.appendChild(o); });
    plane.value = "pca";
    const model = S.panels.find((P) => P.info.causal);
    if (model) { $("grid-layer").max = String(model.info.n_layers); $("grid-layer").value = String(Math.floor(model.info.n_layers / 2)); }
    else { $("tab-grid").hidden = true; $("tab-layers").hidden = true; }
    const named = readHash();
    const def = S.info.panels[0].default_map || { method: "pca", dims: 2, pending: null };
    if (!named) { S.method = def.method; S.dims = def.dims || 2; }
    syncControls(); E.writeHash();
    // Labels and coordinates are fetched together: the first paint waits for the slower of the two.
    const loaded = await Promise.all(S.panels.map(async (P) => {
      const [, ok] = await Promise.all([loadPoints(P), loadProjection(P)]);
      if (ok) draw(P);
      return ok;
    }));
    if (loaded.some((ok) => !ok)) await reloadMaps();
    S.panels.forEach((P) => { loadFrequency(P); loadFaithfulness(P); });
    if (S.panels.length === 2 && !E.offline) loadComparison();
    else {  // one panel, or a static export: nothing to compare with
      $("color").querySelector("option[value=changed]").remove();
      if (S.color === "changed") { S.color = "frequency"; $("color").value = S.color; E.writeHash(); S.panels.forEach(paint); }
    }
    E.filters.build();
    runClusters();
    if (!named && def.pending) awaitPending(S.panels[0], def.pending, S.dims, S.method);
    if (S.sel) {
      const [idx, ids] = S.sel.includes(":") ? S.sel.split(":") : ["0", S.sel];
      const P = S.panels[Number(idx)] || S.panels[0];
      E.selection.restore(P, ids);
    }
    if (S.search) await runSearch();
    if (S.token) await selectToken(S.token, null);
    if (S.prompt) { await placePrompt(); if (S.pos !== null) await showTrajectory(); }
    E.views.show(S.view);
    S.ready = true;
    document.body.dataset.ready = "1";
    wire();
    pollJobs();
  }

  function wire() {
    E.filters.wire();
    E.selection.wire();
    E.views.VIEWS.forEach((v) => $("tab-" + v).addEventListener("click", () => E.views.show(v)));
    $("method").addEventListener("change", () => { S.method = $("method").value; reloadMaps(); });
    $("axes-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      for (const key of ["xa", "xb", "ya", "yb"]) S.axes[key] = $("axis-" + key).value.trim();
      reloadMaps();
    });
    $("clusters-form").addEventListener("submit", (ev) => { ev.preventDefault(); runClusters(); });
    $("dims").addEventListener("change", () => {
      S.dims = Number($("dims").value);
      S.panels.forEach((P) => { P.overlays.trajectory = null; if (P.map) P.map.setTool(S.dims === 3 ? "pan" : S.tool); });
      reloadMaps();
    });
    $("color").addEventListener("change", () => { S.color = $("color").value; E.writeHash(); S.panels.forEach(paint); });
    $("labels-on").addEventListener("change", () => { S.labels = $("labels-on").checked; S.panels.forEach((P) => P.map && P.map.showLabels(S.labels)); E.writeHash(); });
    $("contours-on").addEventListener("change", () => { S.contours = $("contours-on").checked; S.panels.forEach((P) => P.map && P.map.showContours(S.contours)); E.writeHash(); });
    document.querySelectorAll("#tools button").forEach((b) => b.addEventListener("click", () => {
      S.tool = b.dataset.tool; syncControls();
      S.panels.forEach((P) => P.map && P.map.setTool(S.tool));
    }));
    $("k").addEventListener("change", () => {
      const k = Number($("k").value);
      if (Number.isInteger(k) && k >= 1 && k <= 200) { S.k = k; if (S.token) selectToken(S.token, null); else E.writeHash(); }
    });
    $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(); });
    $("prompt-form").addEventListener("submit", (ev) => { ev.preventDefault(); S.pos = null; placePrompt(); });
    $("trajectory-btn").addEventListener("click", showTrajectory);
    $("layers-btn").addEventListener("click", E.views.showLayers);
    $("grid-plane").addEventListener("change", () => { $("grid-tokens").hidden = $("grid-plane").value !== "tokens"; });
    $("grid-form").addEventListener("submit", (ev) => { ev.preventDefault(); E.views.runGrid(); });
    window.addEventListener("hashchange", () => {
      const before = S.method + S.dims;
      readHash();
      if (S.method + S.dims !== before) reloadMaps();
      if (S.search) runSearch();
      if (S.token) selectToken(S.token, null);
      E.views.show(S.view);
    });
  }

  E.selectToken = selectToken;
  E.runClusters = runClusters;
  E.runSearch = runSearch;
  document.addEventListener("DOMContentLoaded", main);
})();
