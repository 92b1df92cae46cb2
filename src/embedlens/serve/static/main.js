// embedlens explorer: start-up and the page's controls. Everything is drawn by the other modules (maps, side
// panels, views); all requests go to this server (api.js), or in a static export to its data (offline.js).
import { api } from "./api.js";
import { colouring } from "./colors.js";
import { runClusters } from "./clusters.js";
import { $, el, status } from "./dom.js";
import { filters } from "./filters.js";
import { runGrid } from "./grid.js";
import { pollJobs } from "./jobs.js";
import { setupDecoderSwitch, showLayers, syncDecoderSwitch } from "./layers.js";
import {
  awaitPending, draw, loadComparison, loadFaithfulness, loadFrequency, loadPoints, loadProjection, makePanel, paint,
  reloadMaps, syncControls,
} from "./maps.js";
import { offline, setupOfflinePage } from "./offline.js";
import { placePrompt, showTrajectory } from "./prompt.js";
import { runSearch } from "./search.js";
import { selection } from "./selection.js";
import { S, VIEWS, readHash, timings, writeHash } from "./state.js";
import { selectToken } from "./token.js";
import { show } from "./views.js";

// What tests and benchmarks read of a running page (the modules themselves share nothing through window).
window.embedlens = { state: S, timings, selection, filters, colouring };

async function main() {
  if (offline) setupOfflinePage();
  try {
    const pre = window.embedlensPrefetch && window.embedlensPrefetch.info;
    S.info = (pre && await pre.catch(() => null)) || await api("info");
  } catch (e) { status("cannot reach the embedlens server: " + e.message); return; }
  timings.info = performance.now();
  if (!window.EmbedlensMap) { status("the map component (pointcloud.js) did not load"); return; }
  S.info.panels.forEach((info) => S.panels.push(makePanel(info)));
  const plane = $("grid-plane");
  S.info.grid_planes.forEach((p) => { const o = el("option", p); o.value = p; plane.appendChild(o); });
  plane.value = "pca";
  const model = S.panels.find((P) => P.info.causal);
  if (model) { $("grid-layer").max = String(model.info.n_layers); $("grid-layer").value = String(Math.floor(model.info.n_layers / 2)); }
  else { $("tab-grid").hidden = true; $("tab-layers").hidden = true; }
  const named = readHash();
  setupDecoderSwitch();
  const def = S.info.panels[0].default_map || { method: "pca", dims: 2, pending: null };
  if (!named) { S.method = def.method; S.dims = def.dims || 2; }
  syncControls(); writeHash();
  // Labels and coordinates are fetched together: the first paint waits for the slower of the two.
  const loaded = await Promise.all(S.panels.map(async (P) => {
    const [, ok] = await Promise.all([loadPoints(P), loadProjection(P)]);
    if (ok) draw(P);
    return ok;
  }));
  if (loaded.some((ok) => !ok)) await reloadMaps();
  S.panels.forEach((P) => { loadFrequency(P); loadFaithfulness(P); });
  if (S.panels.length === 2 && !offline) loadComparison();
  else {  // one panel, or a static export: nothing to compare with
    $("color").querySelector("option[value=changed]").remove();
    if (S.color === "changed") { S.color = "frequency"; $("color").value = S.color; writeHash(); S.panels.forEach(paint); }
  }
  filters.build();
  runClusters();
  if (!named && def.pending) awaitPending(S.panels[0], def.pending, S.dims, S.method);
  if (S.sel) {
    const [idx, ids] = S.sel.includes(":") ? S.sel.split(":") : ["0", S.sel];
    const P = S.panels[Number(idx)] || S.panels[0];
    selection.restore(P, ids);
  }
  if (S.search) await runSearch();
  if (S.token) await selectToken(S.token, null);
  if (S.prompt) { await placePrompt(); if (S.pos !== null) await showTrajectory(); }
  show(S.view);
  S.ready = true;
  document.body.dataset.ready = "1";
  wire();
  pollJobs();
}

function wire() {
  filters.wire();
  selection.wire();
  VIEWS.forEach((v) => $("tab-" + v).addEventListener("click", () => show(v)));
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
  $("color").addEventListener("change", () => { S.color = $("color").value; writeHash(); S.panels.forEach(paint); });
  $("labels-on").addEventListener("change", () => { S.labels = $("labels-on").checked; S.panels.forEach((P) => P.map && P.map.showLabels(S.labels)); writeHash(); });
  $("contours-on").addEventListener("change", () => { S.contours = $("contours-on").checked; S.panels.forEach((P) => P.map && P.map.showContours(S.contours)); writeHash(); });
  document.querySelectorAll("#tools button").forEach((b) => b.addEventListener("click", () => {
    S.tool = b.dataset.tool; syncControls();
    S.panels.forEach((P) => P.map && P.map.setTool(S.tool));
  }));
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
    syncDecoderSwitch();
    if (S.method + S.dims !== before) reloadMaps();
    if (S.search) runSearch();
    if (S.token) selectToken(S.token, null);
    show(S.view);
  });
}

document.addEventListener("DOMContentLoaded", main);
