// The maps: each panel's points drawn by the shared WebGL component EmbedlensMap (render/static/pointcloud.js),
// its projection (fetched, or word axes computed on request), colours, labels, overlays, faithfulness, and
// the link between two panels. Token strings are untrusted: textContent only.
import { api, binary, poll } from "./api.js";
import { colouring, drawLegend } from "./colors.js";
import { $, el, fmt } from "./dom.js";
import { filters } from "./filters.js";
import { selection } from "./selection.js";
import { METHOD_NAMES, S, activePanel, timings, writeHash } from "./state.js";
import { clickToken } from "./token.js";

// -- panels ----------------------------------------------------------------------------------------------
export function makePanel(info) {
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

export async function loadPoints(P) {
  const pre = prefetched("points", P);
  P.points = (pre && await pre) || await api("points", { space: P.info.index });
  timings.points = timings.points || performance.now();
}

export async function loadFrequency(P) {
  try {
    const r = await poll("frequency", { space: P.info.index }, null, null, 1000);
    P.freq = Int32Array.from(r.counts);
    P.priority = null;
    if (S.color === "frequency") paint(P);
    labels(P);
    if (P === activePanel()) filters.build();
    selection.refresh();
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
  const r = await poll("projection", params, onState, () => buffer === null && method === S.method && dims === S.dims, 500);
  if (r) P.notes = r.result.notes || [];
  if (!buffer) {
    if (!r) return null;
    buffer = await binary("projection/data", params);
  }
  return new Float32Array(buffer);
}

export async function loadProjection(P) {
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
  timings.coords = timings.coords || performance.now();
  return true;
}

// -- drawing ---------------------------------------------------------------------------------------------
function pointSize(n, dims) { return dims === 3 ? 2 : n > 150_000 ? 2 : n > 20_000 ? 3 : n > 2_000 ? 4 : 6; }

export function draw(P) {
  if (!P.coords || !P.points) return;
  const started = performance.now();
  const { colors, legend } = colouring(P);
  if (!P.map) {
    P.map = window.EmbedlensMap.create(P.plot, {
      dims: P.dims, coords: P.coords, display: P.points.display, colors, size: pointSize(P.points.ids.length, P.dims),
      hover: (row) => [P.points.display[row], details(P, row)], labels: null, contours: S.contours, background: "#fff",
    });
    P.map.on("hover", (row) => hoverReadout(P, row));
    P.map.on("hover", (row) => linkHover(P, row));
    P.map.on("click", (row, ev) => { if (row >= 0 && !(ev && ev.shiftKey)) clickToken(P, row); });
    P.map.on("select", (rows) => selection.set(P, rows, { fromMap: true }));
    P.map.setTool(S.dims === 3 ? "pan" : S.tool);
  } else {
    P.map.setCoords(P.coords, P.dims);
    P.map.setColors(colors);
  }
  drawLegend(P.legend, legend);
  P.map.setAxes(P.axisTitles || []);  // word axes: which tokens span each axis
  P.map.showLabels(S.labels); P.map.showContours(S.contours);
  labels(P);
  drawOverlays(P);
  if (P === activePanel()) filters.update();
  const sel = selection.panel() === P ? selection.rows() : [];
  if (sel.length) P.map.select(sel);
  caption(P);
  if (!P.plot.clientWidth) P.unframed = true;
  P.plot.dataset.drawn = String(P.points.ids.length);
  P.plot.dataset.method = P.method; P.plot.dataset.dims = String(P.dims);
  timings.lastDraw = performance.now() - started;
  if (timings.firstPaint === null) requestAnimationFrame(() => { timings.firstPaint = performance.now(); });
}

export function paint(P) {
  if (!P.map) return;
  const { colors, legend } = colouring(P);
  P.map.setColors(colors);
  drawLegend(P.legend, legend);
}

export function drawOverlays(P) {
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

// The clusters as zoom-dependent labels: clusters, then sub-clusters, then the frequent tokens in view.
export function labels(P) {
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

export async function loadFaithfulness(P) {
  if (P.method === "axes") { P.faith = null; return; }
  const key = P.method + P.dims;
  P.faith = { state: "queued", key };
  try {
    const r = await poll("faithfulness", { space: P.info.index, method: P.method, dims: P.dims },
      (s) => { if (P.faith && P.faith.key === key) { P.faith.state = s.state; caption(P); } },
      () => P.faith && P.faith.key === key, 1000);
    if (!r || !P.faith || P.faith.key !== key) return;
    P.faith = Object.assign({}, r.result, { state: "ready", key });
    caption(P);
    if (S.color === "faithfulness") paint(P);
    selection.refresh();
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

export async function loadComparison() {
  const [A, B] = S.panels;
  try {
    const r = (await poll("compare", {}, null, null, 2000)).result;  // Comparison.to_dict()
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


// -- maps: load, swap in the pending t-SNE -----------------------------------------------------------------
export async function reloadMaps() {
  syncControls(); writeHash();
  await Promise.all(S.panels.map(async (P) => {
    if (await loadProjection(P)) { draw(P); loadFaithfulness(P); }
  }));
}

// The server opened on PCA and queued a t-SNE: swap it in when ready, unless the user picked a map meanwhile.
export async function awaitPending(P, pending, dims, from) {
  try {
    const r = await poll("projection", { space: P.info.index, method: pending, dims }, null,
      () => S.method === from && S.dims === dims, 1500);
    if (!r || S.method !== from || S.dims !== dims) return;
    S.method = pending;
    await reloadMaps();
    notice(P, "the " + METHOD_NAMES[pending] + " map is ready and replaced " + METHOD_NAMES[from] +
      " (the map menu switches back)");
  } catch (e) { /* PCA stays */ }
}


// -- the header's map controls -------------------------------------------------------------------------
export function syncControls() {
  $("method").value = S.method; $("dims").value = String(S.dims);
  $("axes-form").hidden = S.method !== "axes";
  document.querySelectorAll("#tools button").forEach((b) => { b.disabled = S.dims === 3; b.classList.toggle("active", b.dataset.tool === S.tool); });
}
