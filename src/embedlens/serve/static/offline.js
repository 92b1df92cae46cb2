// The explorer without a server: in a static export (embedlens serve --export, embedlens export-site) the
// page's API calls are answered here from the data scripts the export wrote (window.EMBEDLENS_DATA: each
// panel's tokens, map, local recall, clusters, frequencies and the k nearest neighbours of every token).
// On the served page there is no such data and nothing here runs. What needs the model or a live server
// (prompts, layers, grid, other maps, a selection's centroid and graph) is hidden, and one line says so.
// Token strings stay data: textContent only.
import { $ } from "./dom.js";
import { S } from "./state.js";

const D = window.EMBEDLENS_DATA;
export const offline = Boolean(D);
// Views that need the server: a link to one opens the map.
export const SERVER_VIEWS = ["layers", "grid", "graph"];
const SERVE = "needs `embedlens serve`";
const MAP_NAMES = { pca: "PCA", tsne: "t-SNE", umap: "UMAP" };

function fail(message, status) { const e = new Error(message); e.status = status || 400; throw e; }

// {"dtype", "shape", "base64"} (little-endian) -> a typed array
function typed(a) {
  const s = atob(a.base64), bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  if (a.dtype === "float32") return new Float32Array(bytes.buffer);
  if (a.dtype === "int32") return new Int32Array(bytes.buffer);
  return fail("unknown array type " + a.dtype);
}

const decoded = [];
function panel(params) {
  const i = Number((params && params.space) || 0);
  const P = D.panels[i];
  if (!Number.isInteger(i) || !P) fail("unknown space " + String(params && params.space), 404);
  if (!decoded[i]) {
    decoded[i] = { rows: typed(P.neighbors.rows), scores: typed(P.neighbors.scores), coords: null, rowOfId: null,
                   lower: P.points.display.map((s) => s.toLowerCase()) };
  }
  return [P, decoded[i]];
}
function sameMap(P, params) { return params.method === P.map.method && Number(params.dims) === P.map.dims; }
function otherMap(P, params) {
  return fail("this export holds the " + MAP_NAMES[P.map.method] + " " + P.map.dims + "D map only; other maps " + SERVE, 404);
}

// A query: id:N, tok:TOKEN or a readable token (as it reads, or with a word-start marker).
function resolve(P, X, q) {
  if (/^id:\d+$/.test(q)) {
    if (!X.rowOfId) X.rowOfId = new Map(P.points.ids.map((id, r) => [id, r]));
    const row = X.rowOfId.get(Number(q.slice(3)));
    return row === undefined ? fail("no token has " + q, 404) : row;
  }
  const t = q.startsWith("tok:") ? q.slice(4) : q;
  for (const form of [t, "␣" + t, "▁" + t, "Ġ" + t]) {
    const row = P.points.display.indexOf(form);
    if (row >= 0) return row;
  }
  return fail("“" + t + "” is not a token of " + D.info.panels[P.points.index].title + " (search finds tokens)", 404);
}

function neighbors(P, X, row, k) {
  const K = P.neighbors.k, take = Math.min(k, K), rows = Array.from(X.rows.subarray(row * K, row * K + take));
  const scores = X.scores.subarray(row * K, row * K + take);
  return {
    query_ids: [P.points.ids[row]], query_rows: [row], query_display: [P.points.display[row]], space: P.space,
    note: k > K ? "this export holds the " + K + " nearest of each token" : null,
    neighbors: rows.map((r, i) => ({ id: P.points.ids[r], display: P.points.display[r], score: scores[i] })), rows,
  };
}

function search(P, X, q, mode) {
  const rows = [];
  if (mode === "regex") {
    let re;
    try { re = new RegExp(q, "iu"); } catch (e) { fail("not a valid regular expression: " + e.message); }
    P.points.display.forEach((s, r) => { if (re.test(s)) rows.push(r); });
  } else {
    const want = q.toLowerCase();
    X.lower.forEach((s, r) => { if (s.includes(want)) rows.push(r); });
  }
  return { query: q, mode, total: rows.length, truncated: false, rows };
}

// The export's map as /api/projection answers it once its job is ready: {job, result: the map's metadata, n}.
function mapAnswer(P) {
  const label = MAP_NAMES[P.map.method] + " " + P.map.dims + "D map";
  return { job: { key: "projection:" + P.points.index, kind: "projection", label, state: "ready", queued_s: 0, elapsed_s: 0, error: null },
           result: { ...P.map, coords: undefined }, n: P.map.coords.shape[0] };
}

const ANSWERS = {
  info: () => D.info,
  points: (P) => P.points,
  jobs: () => ({ jobs: [] }),
  frequency: (P) => P.frequency || fail(P.frequency_note || "no corpus frequencies in this export", 404),
  projection: (P, X, p) => (sameMap(P, p) ? mapAnswer(P) : otherMap(P, p)),
  faithfulness: (P, X, p) => (sameMap(P, p) ? P.faithfulness : otherMap(P, p)),
  clusters: (P, X, p) => ((p.n || "auto") === "auto" ? P.clusters : fail("this export holds the automatic clusters; other counts " + SERVE, 404)),
  search: (P, X, p) => search(P, X, String(p.q || ""), p.mode === "regex" ? "regex" : "text"),
  neighbors: (P, X, p) => neighbors(P, X, resolve(P, X, String(p.q || "")), Number(p.k) || 20),
  true_neighbors: (P, X, p) => ({ rows: neighbors(P, X, Number(p.row), Number(p.k) || 10).rows }),
};

export async function offlineApi(path, params) {
  const answer = ANSWERS[path];
  if (!answer) fail(path.replace(/_/g, " ") + " " + SERVE, 404);
  const [P, X] = path === "info" || path === "jobs" ? [null, null] : panel(params);
  return answer(P, X, params || {});
}
export const offlinePost = async (path) => fail(path.replace(/_/g, " ") + " " + SERVE, 404);
export async function offlineBinary(path, params) {
  const [P, X] = panel(params);
  if (path !== "projection/data" || !sameMap(P, params)) otherMap(P, params);
  if (!X.coords) X.coords = typed(P.map.coords);
  return X.coords.buffer.slice(0);
}

// -- the page: only what the data answer (called by main.js before it reads the link) ----------------------
export function setupOfflinePage() {
  const first = D.panels[0].map, K = Math.min(...D.panels.map((P) => P.neighbors.k));
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.get("method") && (p.get("method") !== first.method || Number(p.get("dims") || 2) !== first.dims)) {
    p.set("method", first.method); p.set("dims", String(first.dims));  // a link made on a server, another map
    history.replaceState(null, "", "#" + p.toString());
  }
  for (const o of $("method").options) { if (o.value !== first.method) { o.disabled = true; o.title = SERVE; } }
  for (const o of $("dims").options) { if (Number(o.value) !== first.dims) { o.disabled = true; o.title = SERVE; } }
  $("k").max = String(K);
  S.k = Math.min(S.k, K);  // the page's default k, unless a link asks for more
  for (const id of ["tab-layers", "tab-grid", "tab-graph", "prompt", "jobs-box", "clusters-form", "sel-centroid", "sel-graph"]) $(id).hidden = true;
  $("centroid-exclude").parentElement.hidden = true;
  const note = $("offline-note");
  note.hidden = false;
  note.textContent = "Static export: map, search, the " + K + " nearest neighbours of every token, clusters and the " +
    "selection work here; prompts, layers, grid, other maps and a selection's centroid or graph need `embedlens serve`.";
}
