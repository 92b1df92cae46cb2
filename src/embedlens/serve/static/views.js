// The main area's views: the map, the prompt's layers (logit lens), the token grid, the selection table and
// the graph of a selection. Plotly draws only the two heatmaps; it is loaded the first time one is needed.
"use strict";

(function () {
  const E = window.embedlens;
  const S = E.state;
  const VIEWS = ["map", "layers", "grid", "table", "graph"];
  let plotly = null, graphMap = null;

  function show(name) {
    if (!VIEWS.includes(name)) name = "map";
    S.view = name;
    VIEWS.forEach((v) => {
      E.$("view-" + v).hidden = v !== name;
      const tab = E.$("tab-" + v); tab.setAttribute("aria-selected", String(v === name)); tab.classList.toggle("active", v === name);
    });
    if (name === "table") E.selection.render();
    // a map drawn while its view was hidden had no size to frame itself in
    if (name === "map") S.panels.forEach((P) => { if (P.map && P.unframed) { P.unframed = false; requestAnimationFrame(() => P.map.frame()); } });
    for (const id of ["layers-plot", "grid-plot"]) {
      const div = E.$(id);
      if (window.Plotly && div.data && !div.hidden && div.offsetParent) window.Plotly.Plots.resize(div);
    }
    E.writeHash();
  }

  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotly) {
      plotly = new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = "/static/plotly.min.js";
        s.onload = () => resolve(window.Plotly);
        s.onerror = () => reject(new Error("plotly.min.js did not load"));
        document.head.appendChild(s);
      });
    }
    return plotly;
  }

  // -- layers: the prompt's logit lens (rows = layers, columns = tokens); a click shows that state's neighbours --
  async function showLayers() {
    const P = S.panels.find((x) => x.info.causal); if (!P) return;
    show("layers");
    const note = E.$("layers-note"); note.textContent = "decoding every layer…";
    E.clear(E.$("layers-cell"));
    try {
      const [r] = await Promise.all([E.api("logit_lens", { space: P.info.index, text: S.prompt }), loadPlotly()]);
      await drawLayers(P, r);
      note.textContent = (r.notes.length ? r.notes.join("; ") + ". " : "") + "Colour: probability of the top-1 token. " +
        "Click a cell for the nearest tokens of that state. " + r.settings.semantics;
    } catch (e) { note.textContent = e.message; }
  }

  function drawLayers(P, r) {
    const esc = E.esc, text = [], hover = [], z = [];
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
      texttemplate: r.positions.length * r.layers.length <= 4000 ? "%{text}" : "", textfont: { size: 10 }, xgap: 1, ygap: 1,
      zmin: 0, zmax: 1, colorscale: "Viridis", colorbar: { title: { text: "p(top-1)" }, thickness: 10 } }];
    const plot = E.$("layers-plot"), box = plot.parentElement;
    // fill the view; a long prompt gets at least 40 px per token and scrolls sideways
    const layout = { margin: { l: 50, r: 10, t: 10, b: 90 }, height: Math.max(320, box.clientHeight - 8),
      width: Math.max(box.clientWidth - 8, 130 + 40 * r.positions.length),
      xaxis: { tickmode: "array", tickvals: r.positions, ticktext: r.positions.map((p) => esc(r.display[p])), tickangle: -60 },
      yaxis: { title: { text: "layer" } } };
    plot.dataset.layers = String(r.layers.length); plot.dataset.positions = String(r.positions.length);
    return window.Plotly.react(plot, data, layout, { displaylogo: false }).then(() => {
      if (!plot.dataset.bound) {
        plot.dataset.bound = "1";
        plot.on("plotly_click", (ev) => { const pt = ev && ev.points && ev.points[0]; if (pt) layerCell(pt.y, pt.x); });
      }
    });
  }

  async function layerCell(layer, position) {
    const P = S.panels.find((x) => x.info.causal); if (!P) return;
    const box = E.$("layers-cell"); E.clear(box);
    try {
      const r = await E.api("lens_nearest", { space: P.info.index, text: S.prompt, layer: layer, position: position, k: S.k });
      const head = E.el("p", null, "selected-token");
      head.appendChild(E.el("span", "layer " + r.layer + " · position " + r.position + " ", "note"));
      head.appendChild(E.el("span", r.display, "tok"));
      box.appendChild(head);
      box.appendChild(E.el("p", "decodes to: " + r.top.map((t) => t.display + " " + t.prob.toFixed(3)).join(" · "), "note"));
      box.appendChild(E.el("p", "nearest " + r.neighbors.length + " tokens of this state (cosine, " + r.space + ")", "note"));
      const table = E.neighborTable(r, P); table.classList.add("layer-neighbors"); box.appendChild(table);
      P.overlays.neighbors = r.rows; P.overlays.selected = [];
      E.drawOverlays(P);
    } catch (e) { box.appendChild(E.el("p", e.message, "error")); }
  }

  // -- grid view ------------------------------------------------------------------------------------------------
  async function runGrid() {
    const P = S.panels.find((x) => x.info.causal);
    const note = E.$("grid-status");
    if (!P) { note.textContent = "the grid view needs a causal language model"; return; }
    const params = { space: P.info.index, layer: E.$("grid-layer").value, plane: E.$("grid-plane").value, size: E.$("grid-size").value };
    if (params.plane === "tokens") params.plane_tokens = E.$("grid-tokens").value;
    try {
      const [r] = await Promise.all([E.poll("grid", params, (s) => { note.textContent = s.label + " · " + s.state + " " + s.elapsed_s.toFixed(1) + " s"; }), loadPlotly()]);
      drawGrid(r.grid); note.textContent = r.grid.config.semantics || "";
    } catch (e) { note.textContent = e.message; }
  }

  // g is GridMap.to_dict(): cells flat in row-major order (cell i * n + j has y[i * n] and x[j])
  function drawGrid(g) {
    const esc = E.esc, cfg = g.config, n = cfg.grid_size, top = g.top5, text = [], hover = [], z = [], ys = [];
    for (let i = 0; i < n; i++) {
      const trow = [], hrow = [];
      for (let j = 0; j < n; j++) {
        const c = i * n + j;
        trow.push(esc(top.display[c][0]));
        hrow.push(top.display[c].map((d, m) => esc(d) + "  " + (100 * top.probs[c][m]).toFixed(1) + "%").join("<br>"));
      }
      text.push(trow); hover.push(hrow); z.push(g.probs.slice(i * n, (i + 1) * n)); ys.push(g.y[i * n]);
    }
    const data = [{ type: "heatmap", x: g.x.slice(0, n), y: ys, z: z, text: text, hovertext: hover, hoverinfo: "text",
      texttemplate: n <= 32 ? "%{text}" : "", colorscale: "Viridis", colorbar: { title: { text: "p(top-1)" }, thickness: 10 } }];
    const plot = E.$("grid-plot"), side = Math.max(320, Math.min(plot.parentElement.clientWidth, plot.parentElement.clientHeight) - 10);
    window.Plotly.react(plot, data, { margin: { l: 40, r: 10, t: 30, b: 30 }, width: side + 60, height: side,
      title: { text: "layer " + cfg.layer_idx + " · " + cfg.embedding_method } }, { displaylogo: false });
  }

  // -- the k-NN graph among selected tokens, drawn with the map component ------------------------------------
  function drawGraph(g, note) {
    const nodes = g.nodes, index = new Map(nodes.map((nd, i) => [nd.id, i]));
    const pairs = g.edges.map((e) => [index.get(e.source), index.get(e.target)]).filter((p) => p[0] !== undefined && p[1] !== undefined);
    const coords = new Float32Array(nodes.length * 2);  // the server's layout (embedlens.graph.layout_graph)
    nodes.forEach((nd, i) => { coords[2 * i] = nd.x; coords[2 * i + 1] = nd.y; });
    const colors = new Uint8Array(nodes.length * 3);
    nodes.forEach((nd, i) => colors.set(nd.is_seed ? [31, 119, 180] : [255, 127, 14], 3 * i));
    const display = nodes.map((nd) => nd.display);
    const box = E.$("graph-map");
    if (graphMap) graphMap.destroy();
    // every node may carry a label: seeds first, the component keeps the boxes apart
    const priority = nodes.map((_, i) => i).sort((a, b) => nodes[b].is_seed - nodes[a].is_seed || a - b);
    graphMap = window.EmbedlensMap.create(box, { dims: 2, coords, display, colors, size: 9, background: "#fff",
      labels: { levels: [], tokenPriority: priority },
      hover: (i) => display[i] + (nodes[i].is_seed ? " (selected)" : " (neighbour)") });
    graphMap.setLines(pairs, { color: "#8a8a8a" });
    // a click on a node shows that token's neighbours in the side bar (g.rows: each node's map row)
    graphMap.on("click", (i) => { if (i >= 0 && g.rows && g.rows[i] >= 0) E.selectToken("id:" + nodes[i].id, E.selection.panel().info.index); });
    const st = g.stats || {};
    E.$("graph-note").textContent = E.fmt(nodes.length) + " nodes (blue: selected tokens" + (note ? ", " + note : "") +
      "; orange: their neighbours outside the selection), " + E.fmt(g.edges.length) + " edges, k = " + (g.graph && g.graph.k) +
      (st.components ? ", " + st.components + " components" : "") + (g.notes && g.notes.length ? ". " + g.notes.join("; ") : "");
    E.$("graph-map").dataset.nodes = String(nodes.length);
    E.$("graph-map").dataset.edges = String(pairs.length);
  }

  E.views = { show, showLayers, runGrid, drawGraph, loadPlotly, layerCell, graphMap: () => graphMap, VIEWS };
})();
