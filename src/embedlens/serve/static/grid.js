// The grid view: the token grid map of one layer (/api/grid's result: GridMap.to_dict(), the shape of its file).
import { poll } from "./api.js";
import { $, esc } from "./dom.js";
import { S } from "./state.js";
import { loadPlotly } from "./views.js";

// -- grid view ------------------------------------------------------------------------------------------------
export async function runGrid() {
  const P = S.panels.find((x) => x.info.causal);
  const note = $("grid-status");
  if (!P) { note.textContent = "the grid view needs a causal language model"; return; }
  const params = { space: P.info.index, layer: $("grid-layer").value, plane: $("grid-plane").value, size: $("grid-size").value };
  if (params.plane === "tokens") params.plane_tokens = $("grid-tokens").value;
  try {
    const [r] = await Promise.all([poll("grid", params, (s) => { note.textContent = s.label + " · " + s.state + " " + s.elapsed_s.toFixed(1) + " s"; }), loadPlotly()]);
    drawGrid(r.result); note.textContent = r.result.config.semantics || "";
  } catch (e) { note.textContent = e.message; }
}

// g is GridMap.to_dict(): cells flat in row-major order (cell i * n + j has y[i * n] and x[j])
function drawGrid(g) {
  const cfg = g.config, n = cfg.grid_size, top = g.top5, text = [], hover = [], z = [], ys = [];
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
  const plot = $("grid-plot"), side = Math.max(320, Math.min(plot.parentElement.clientWidth, plot.parentElement.clientHeight) - 10);
  window.Plotly.react(plot, data, { margin: { l: 40, r: 10, t: 30, b: 30 }, width: side + 60, height: side,
    title: { text: "layer " + cfg.layer_idx + " · " + cfg.embedding_method } }, { displaylogo: false });
}
