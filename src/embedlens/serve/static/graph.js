// The graph view: the k-NN graph among selected tokens (GraphResult.to_dict()), drawn with the map component.
import { $, fmt } from "./dom.js";
import { selection } from "./selection.js";
import { selectToken } from "./token.js";

let graphMap = null;

// -- the k-NN graph among selected tokens, drawn with the map component ------------------------------------
export function drawGraph(g, note) {
  const nodes = g.nodes, index = new Map(nodes.map((nd, i) => [nd.id, i]));
  const pairs = g.edges.map((e) => [index.get(e.source), index.get(e.target)]).filter((p) => p[0] !== undefined && p[1] !== undefined);
  const coords = new Float32Array(nodes.length * 2);  // the server's layout (embedlens.graph.layout_graph)
  nodes.forEach((nd, i) => { coords[2 * i] = nd.x; coords[2 * i + 1] = nd.y; });
  const colors = new Uint8Array(nodes.length * 3);
  nodes.forEach((nd, i) => colors.set(nd.is_seed ? [31, 119, 180] : [255, 127, 14], 3 * i));
  const display = nodes.map((nd) => nd.display);
  const box = $("graph-map");
  if (graphMap) graphMap.destroy();
  // every node may carry a label: seeds first, the component keeps the boxes apart
  const priority = nodes.map((_, i) => i).sort((a, b) => nodes[b].is_seed - nodes[a].is_seed || a - b);
  graphMap = window.EmbedlensMap.create(box, { dims: 2, coords, display, colors, size: 9, background: "#fff",
    labels: { levels: [], tokenPriority: priority },
    hover: (i) => display[i] + (nodes[i].is_seed ? " (selected)" : " (neighbour)") });
  graphMap.setLines(pairs, { color: "#8a8a8a" });
  // a click on a node shows that token's neighbours in the side bar (g.rows: each node's map row)
  graphMap.on("click", (i) => { if (i >= 0 && g.rows && g.rows[i] >= 0) selectToken("id:" + nodes[i].id, selection.panel().info.index); });
  const st = g.stats || {};
  $("graph-note").textContent = fmt(nodes.length) + " nodes (blue: selected tokens" + (note ? ", " + note : "") +
    "; orange: their neighbours outside the selection), " + fmt(g.edges.length) + " edges, k = " + (g.graph && g.graph.k) +
    (st.components ? ", " + st.components + " components" : "") + (g.notes && g.notes.length ? ". " + g.notes.join("; ") : "");
  $("graph-map").dataset.nodes = String(nodes.length);
  $("graph-map").dataset.edges = String(pairs.length);
}
