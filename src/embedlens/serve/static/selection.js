// The selection: tokens picked on the map (box, lasso, shift-click) or from a cluster. Shown as a sortable
// table (only the rows in view are in the DOM, so 100,000 selected rows cost what 50 do), exported as CSV or
// JSON (client-side downloads), copied as ids, kept in the link, and answered by the server: nearest tokens
// of the centroid, the k-NN graph among the selected tokens.
import { post } from "./api.js";
import { $, clear, el, fmt } from "./dom.js";
import { drawGraph } from "./graph.js";
import { filters } from "./filters.js";
import { neighborTable } from "./token.js";
import { S, timings, writeHash } from "./state.js";
import { show } from "./views.js";

const ROW_H = 22, OVERSCAN = 20, GRAPH_MAX = 500, LINK_MAX = 50_000;
const T = { panel: null, rows: new Int32Array(0), order: new Int32Array(0), sort: { key: "id", dir: 1 }, timing: null };

const COLUMNS = [
  { key: "id", title: "id", num: true, value: (P, r) => P.points.ids[r] },
  { key: "token", title: "token", value: (P, r) => P.points.display[r] },
  { key: "frequency", title: "frequency", num: true, value: (P, r) => (P.freq ? P.freq[r] : null) },
  { key: "length", title: "length", num: true, value: (P, r) => P.points.length[r] },
  { key: "script", title: "writing system", value: (P, r) => (P.points.script ? P.points.script[r] : null) },
  { key: "cluster", title: "cluster", value: (P, r) => clusterLabel(P, r) },
  { key: "local_recall", title: "local recall", num: true,
    value: (P, r) => (P.faith && P.faith.local_recall ? P.faith.local_recall[r] : null),
    text: (v) => (v === null || v === undefined ? "" : Number(v).toFixed(2)) },
];
function clusterLabel(P, r) {
  if (!P.clusters) return null;
  const a = P.clusters.assignment[r];
  if (a < 0) return "(none)";
  if (!P.clusterLabel) P.clusterLabel = new Map(P.clusters.clusters.map((c) => [c.id, c.label]));
  return P.clusterLabel.get(a) || String(a);
}
const cellText = (col, v) => (col.text ? col.text(v) : v === null || v === undefined ? "" : col.num ? fmt(v) : String(v));

// -- the selection itself ------------------------------------------------------------------------------
function set(P, rows, opts) {
  const t0 = performance.now();
  const sorted = Int32Array.from(new Set(rows)).sort();
  T.panel = P; T.rows = sorted;
  if (S.active !== P.info.index) { S.active = P.info.index; filters.build(); }
  if (P.map && !(opts && opts.fromMap)) P.map.select(sorted);
  S.panels.forEach((Q) => { if (Q !== P && Q.map && Q.map.selected().length) Q.map.select([]); });
  sortRows();
  render();
  $("tab-table").textContent = "selection (" + fmt(sorted.length) + ")";
  $("centroid-result").hidden = true;
  if (!(opts && opts.quiet)) writeHash();
  requestAnimationFrame(() => { T.timing = performance.now() - t0; timings.selectionToTable = T.timing; });
}

function sortRows() {
  const P = T.panel, col = COLUMNS.find((c) => c.key === T.sort.key), dir = T.sort.dir;
  if (!P) return;
  const rows = T.rows, n = rows.length, keys = new Array(n);
  for (let i = 0; i < n; i++) keys[i] = col.value(P, rows[i]);
  const idx = Array.from({ length: n }, (_, i) => i);
  const cmp = col.num ? (a, b) => ((keys[a] ?? -Infinity) - (keys[b] ?? -Infinity)) * dir || rows[a] - rows[b]
    : (a, b) => { const x = keys[a] ?? "", y = keys[b] ?? ""; return (x < y ? -1 : x > y ? 1 : 0) * dir || rows[a] - rows[b]; };
  idx.sort(cmp);
  T.order = Int32Array.from(idx, (i) => rows[i]);
}

// -- the table (virtual: a spacer above and below the rows in view) ----------------------------------------
function header() {
  const tr = $("sel-head"); clear(tr);
  COLUMNS.forEach((c) => {
    const th = el("th", c.title + (T.sort.key === c.key ? (T.sort.dir > 0 ? " ▲" : " ▼") : ""));
    th.dataset.key = c.key; th.className = c.num ? "num" : "";
    th.title = "sort by " + c.title;
    th.addEventListener("click", () => {
      T.sort = { key: c.key, dir: T.sort.key === c.key ? -T.sort.dir : (c.num && c.key !== "id" ? -1 : 1) };
      sortRows(); render(); header();
    });
    tr.appendChild(th);
  });
}
function render() {
  const P = T.panel, body = $("sel-body"), scroller = $("table-scroll");
  const n = T.order.length;
  // read the scroll position before touching the rows: an emptied table would clamp it to 0
  const top = scroller.scrollTop, view = Math.max(400, scroller.clientHeight);
  $("sel-summary").textContent = n ? fmt(n) + " selected tokens of " + P.info.title : "no tokens selected: use the box or lasso tool on the map (shift adds), or click a cluster";
  $("sel-actions").hidden = n === 0;
  if (!n) { clear(body); return; }
  const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
  const last = Math.min(n, Math.ceil((top + view) / ROW_H) + OVERSCAN);
  const rows = [];
  const spacer = (h) => { const tr = el("tr", null, "spacer"); tr.style.height = h + "px"; return tr; };
  if (first > 0) rows.push(spacer(first * ROW_H));
  for (let i = first; i < last; i++) {
    const r = T.order[i], tr = el("tr");
    tr.dataset.row = String(r); tr.dataset.id = String(P.points.ids[r]);
    COLUMNS.forEach((c) => tr.appendChild(el("td", cellText(c, c.value(P, r)), c.key === "token" ? "tok" : c.num ? "num" : "")));
    rows.push(tr);
  }
  if (last < n) rows.push(spacer((n - last) * ROW_H));
  body.replaceChildren(...rows);
}

// -- export ------------------------------------------------------------------------------------------------
// A spreadsheet runs a cell that starts with = + - @ (or a tab / carriage return before one): a single
// quote in front keeps it text. Otherwise tokens are written exactly (RFC 4180 quoting).
function csvCell(v, guard) {
  let s = v === null || v === undefined ? "" : String(v);
  if (guard && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}
function records() {
  const P = T.panel;
  return Array.from(T.order, (r) => {
    const o = { row: r };
    COLUMNS.forEach((c) => { o[c.key] = c.value(P, r); });
    return o;
  });
}
function csvText() {
  const lines = [["row", ...COLUMNS.map((c) => c.key)].join(",")];
  for (const o of records()) lines.push([o.row, ...COLUMNS.map((c) => csvCell(o[c.key], !c.num))].join(","));
  return lines.join("\r\n") + "\r\n";
}
function jsonText() {
  const P = T.panel;
  return JSON.stringify({ space: P.info.index, title: P.info.title, n: T.order.length, corpus: S.info.corpus,
    columns: ["row", ...COLUMNS.map((c) => c.key)], tokens: records() }, null, 1);
}
function download(text, type, name) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a"); a.href = url; a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
const fileBase = () => "embedlens-selection-" + T.panel.info.title.replace(/[^A-Za-z0-9._-]+/g, "_");

async function copyIds() {
  const text = Array.from(T.order, (r) => T.panel.points.ids[r]).join(" ");
  try { await navigator.clipboard.writeText(text); }
  catch (e) {  // no clipboard permission (plain http on another host, headless): a selected text box instead
    const box = $("copy-box"); box.hidden = false; box.value = text; box.select();
    $("sel-note").textContent = "the browser refused the clipboard: the ids are selected in the box, copy them with Ctrl+C";
    return;
  }
  $("sel-note").textContent = "copied " + fmt(T.order.length) + " ids";
}

// -- server actions ------------------------------------------------------------------------------------------
async function centroid() {
  const P = T.panel, box = $("centroid-result"), note = $("sel-note");
  note.textContent = "nearest tokens of the centroid…";
  try {
    const r = await post("centroid", { space: P.info.index, rows: Array.from(T.rows), k: S.k,
      exclude_selected: $("centroid-exclude").checked });
    box.hidden = false; clear(box);
    box.appendChild(el("p", "nearest " + r.neighbors.length + " tokens of the centroid of " + fmt(r.n_selected) +
      " selected tokens" + (r.exclude_selected ? ", leaving them out" : "") + " (" + r.note + ")", "note"));
    const t = neighborTable(r, P); t.classList.add("centroid"); box.appendChild(t);
    P.map.setOverlay("centroid", r.rows, { color: "#9467bd", size: 8, label: true });
    note.textContent = "";
  } catch (e) { note.textContent = "centroid: " + e.message; }
}

async function graph() {
  const P = T.panel, note = $("sel-note");
  const rows = Array.from(T.order.slice(0, GRAPH_MAX));
  note.textContent = "building the k-NN graph of " + rows.length + " tokens…";
  try {
    const g = await post("selection_graph", { space: P.info.index, rows, k: 10 });
    show("graph");
    drawGraph(g, T.order.length > GRAPH_MAX ? "the first " + GRAPH_MAX + " rows of the table (in its order)" : null);
    note.textContent = "";
  } catch (e) { note.textContent = "graph: " + e.message; }
}

// -- the link: sorted token ids as runs, each "gap" or "gap_extra" in base 36 (gap from the previous run's end,
// extra = run length - 1), joined by "."; e.g. ids 3-6, 10 -> "3_3.3". Characters a URL keeps as they are.
function encode(ids) {
  const s = Int32Array.from(ids).sort(), parts = [];
  let prev = -1;
  for (let i = 0; i < s.length;) {
    let j = i; while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    const gap = s[i] - prev - 1, extra = j - i;
    parts.push(gap.toString(36) + (extra ? "_" + extra.toString(36) : ""));
    prev = s[j]; i = j + 1;
  }
  return parts.join(".");
}
function decode(text) {
  const out = [];
  let prev = -1;
  for (const part of text.split(".")) {
    if (!part) continue;
    if (!/^[0-9a-z]{1,7}(_[0-9a-z]{1,7})?$/.test(part)) return null;
    const [g, x] = part.split("_");
    const start = prev + 1 + parseInt(g, 36), extra = x ? parseInt(x, 36) : 0;
    if (!Number.isFinite(start) || !Number.isFinite(extra) || extra < 0 || out.length + extra > 5e6) return null;
    for (let k = 0; k <= extra; k++) out.push(start + k);
    prev = start + extra;
  }
  return out;
}

function wire() {
  header();
  $("table-scroll").addEventListener("scroll", () => requestAnimationFrame(render), { passive: true });
  $("export-csv").addEventListener("click", () => download(csvText(), "text/csv;charset=utf-8", fileBase() + ".csv"));
  $("export-json").addEventListener("click", () => download(jsonText(), "application/json", fileBase() + ".json"));
  $("copy-ids").addEventListener("click", copyIds);
  $("sel-centroid").addEventListener("click", centroid);
  $("sel-graph").addEventListener("click", graph);
  $("sel-clear").addEventListener("click", () => { if (T.panel) set(T.panel, []); });
}

export const selection = {
  set, wire, render, encode, decode, csvText, jsonText,
  refresh: () => { if (T.panel) { sortRows(); render(); } },
  rows: () => Array.from(T.rows), order: () => Array.from(T.order),
  panel: () => T.panel,
  sortBy: (key, dir) => { T.sort = { key, dir }; sortRows(); render(); header(); },
  // for the link: "panel:encoded ids"
  // (a selection of more than LINK_MAX tokens is left out: a link of megabytes helps nobody)
  link: () => (T.panel && T.rows.length && T.rows.length <= LINK_MAX
    ? T.panel.info.index + ":" + encode(Array.from(T.rows, (r) => T.panel.points.ids[r])) : ""),
  restore: (P, text) => {
    const ids = decode(text);
    if (!ids) return false;
    const rowOf = P.rowOfId || (P.rowOfId = new Map(P.points.ids.map((id, r) => [id, r])));
    set(P, ids.map((id) => rowOf.get(id)).filter((r) => r !== undefined), { quiet: true });
    return true;
  },
};
