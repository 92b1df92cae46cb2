// The main area's views (tabs): the map, the prompt's layers (logit lens), the token grid, the selection table
// and the graph of a selection. Each view's drawing lives in its own module (maps, layers, grid, selection, graph).
import { $ } from "./dom.js";
import { SERVER_VIEWS, offline } from "./offline.js";
import { selection } from "./selection.js";
import { S, VIEWS, writeHash } from "./state.js";

let plotly = null;

export function show(name) {
  if (!VIEWS.includes(name) || (offline && SERVER_VIEWS.includes(name))) name = "map";
  S.view = name;
  VIEWS.forEach((v) => {
    $("view-" + v).hidden = v !== name;
    const tab = $("tab-" + v); tab.setAttribute("aria-selected", String(v === name)); tab.classList.toggle("active", v === name);
  });
  if (name === "table") selection.render();
  // a map drawn while its view was hidden had no size to frame itself in
  if (name === "map") S.panels.forEach((P) => { if (P.map && P.unframed) { P.unframed = false; requestAnimationFrame(() => P.map.frame()); } });
  for (const id of ["layers-plot", "grid-plot"]) {
    const div = $(id);
    if (window.Plotly && div.data && !div.hidden && div.offsetParent) window.Plotly.Plots.resize(div);
  }
  writeHash();
}

// Plotly draws only the two heatmaps: loaded the first time one is needed.
export function loadPlotly() {
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
