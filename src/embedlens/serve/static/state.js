// The page's state (S) and the link that holds it: the URL hash is read into S at start-up and on
// hashchange, and written back after every change, so a link reopens the same view.
import { $, status } from "./dom.js";
import { selection } from "./selection.js";

export const S = {
  info: null, panels: [], method: null, dims: 2, color: "frequency", k: 20,
  token: null, search: "", mode: "text", prompt: "", pos: null, ready: false,
  axes: { xa: "", xb: "", ya: "", yb: "" }, view: "map", tool: "pan",
  labels: true, contours: false, active: 0, decoder: "logit",
};
export const timings = { start: performance.now(), firstPaint: null };
export const VIEWS = ["map", "layers", "grid", "table", "graph"];
export const METHOD_NAMES = { pca: "PCA", tsne: "t-SNE", umap: "UMAP", axes: "word axes" };
const COLORS = ["frequency", "faithfulness", "length", "word", "script", "cluster", "changed"];
const DECODERS = ["logit", "tuned"];

// The first panel of the selection, filters and table: where the user last selected.
export const activePanel = () => S.panels[S.active] || S.panels[0] || null;

export function writeHash() {
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
  if (S.decoder !== "logit") p.set("lens", S.decoder);  // the link says lens=, as the CLI says --lens
  const sel = selection.link();
  if (sel) p.set("sel", sel);
  const h = "#" + p.toString();
  if (location.hash !== h) history.replaceState(null, "", h);
  $("permalink").href = location.href;
}

// Reads the link into S; true when it names a map (else the server's default map is shown).
export function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  const named = ["pca", "tsne", "umap", "axes"].includes(p.get("method"));
  if (named) S.method = p.get("method");
  for (const key of ["xa", "xb", "ya", "yb"]) { S.axes[key] = p.get(key) || ""; $("axis-" + key).value = S.axes[key]; }
  if (["2", "3"].includes(p.get("dims"))) S.dims = Number(p.get("dims"));
  if (COLORS.includes(p.get("color"))) S.color = p.get("color");
  const k = Number(p.get("k")); if (Number.isInteger(k) && k >= 1 && k <= 200) S.k = k;
  S.view = VIEWS.includes(p.get("view")) ? p.get("view") : "map";
  S.labels = p.get("labels") !== "0"; S.contours = p.get("contours") === "1";
  S.token = p.get("token") || null;
  S.search = p.get("search") || ""; S.mode = p.get("mode") === "regex" ? "regex" : "text";
  S.prompt = p.get("prompt") || "";
  const pos = Number(p.get("pos")); S.pos = p.has("pos") && Number.isInteger(pos) && pos >= 0 ? pos : null;
  S.decoder = DECODERS.includes(p.get("lens")) ? p.get("lens") : "logit";
  S.sel = p.get("sel") || "";
  $("color").value = S.color; $("k").value = String(S.k); $("search").value = S.search; $("search-mode").value = S.mode;
  $("prompt-text").value = S.prompt; $("labels-on").checked = S.labels; $("contours-on").checked = S.contours;
  const want = p.get("model");
  if (want && S.panels.length && want !== S.panels.map((x) => x.info.title).join("|")) {
    status("this link was made for " + want + "; this server shows " + S.panels.map((x) => x.info.title).join(", "));
  }
  return named;
}
