// Cross-filtering: histograms of corpus frequency, token length, writing system, part of speech (when the
// vocabulary's tags are cached) and cluster. Brushing one
// (drag over bars, or click) keeps only those tokens on the map (the map component's mask) and every other
// histogram counts only the tokens that pass the filters but its own (the usual cross-filter rule).
import { $, clear, el, fmt } from "./dom.js";
import { activePanel } from "./state.js";

const F = { dims: [], panel: null, drag: null };
const MAX_LEN_BIN = 30;

function freqDim(counts) {  // bin 0: unseen; bin b >= 1: counts in [2^(b-1), 2^b - 1]
  const n = counts.length, codes = new Int32Array(n);
  let top = 0;
  for (let i = 0; i < n; i++) { const c = counts[i]; codes[i] = c > 0 ? Math.floor(Math.log2(c)) + 1 : 0; if (codes[i] > top) top = codes[i]; }
  const labels = [];
  for (let b = 0; b <= top; b++) labels.push(b === 0 ? "0" : b === 1 ? "1" : fmt(2 ** (b - 1)) + "–" + fmt(2 ** b - 1));
  return { name: "frequency", title: "corpus count", kind: "range", codes, labels };
}
function lengthDim(lengths) {
  const n = lengths.length, codes = new Int32Array(n);
  let top = 0;
  for (let i = 0; i < n; i++) { codes[i] = Math.min(lengths[i], MAX_LEN_BIN); if (codes[i] > top) top = codes[i]; }
  const labels = [];
  for (let b = 0; b <= top; b++) labels.push(b === MAX_LEN_BIN ? MAX_LEN_BIN + "+" : String(b));
  return { name: "length", title: "token length", kind: "range", codes, labels };
}
function setDim(name, title, values, labelOf) {  // categorical: one bin per distinct value
  const index = new Map(), labels = [], codes = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    let c = index.get(values[i]);
    if (c === undefined) { c = labels.length; index.set(values[i], c); labels.push(labelOf(values[i])); }
    codes[i] = c;
  }
  return { name, title, kind: "set", codes, labels };
}

// (Re)build the dimensions of the active panel from what has arrived; keeps the filters that still apply.
function build() {
  const P = activePanel();
  if (!P || !P.points) return;
  const old = new Map(F.panel === P ? F.dims.map((d) => [d.name, d.sel]) : []);
  const dims = [];
  if (P.freq) dims.push(freqDim(P.freq));
  dims.push(lengthDim(P.points.length));
  if (P.points.script) dims.push(setDim("script", "writing system", P.points.script, (s) => s));
  if (P.points.pos) dims.push(setDim("pos", "part of speech", P.points.pos, (s) => s));
  if (P.clusters) {
    const label = new Map(P.clusters.clusters.map((c) => [c.id, c.label]));
    dims.push(setDim("cluster", "cluster", P.clusters.assignment, (a) => (a < 0 ? "(none)" : label.get(a) || String(a))));
  }
  dims.forEach((d) => { d.sel = old.get(d.name) || null; if (d.sel) d.sel = new Set([...d.sel].filter((b) => b < d.labels.length)); });
  F.panel = P; F.dims = dims;
  update();
}

// rows passing every filter; per dimension, counts over rows passing all the other filters
function compute() {
  const P = F.panel, n = P.points.ids.length, dims = F.dims, active = dims.filter((d) => d.sel && d.sel.size);
  const counts = dims.map((d) => new Int32Array(d.labels.length)), totals = dims.map((d) => new Int32Array(d.labels.length));
  const mask = new Uint8Array(n);
  let kept = 0;
  for (let i = 0; i < n; i++) {
    let failed = -1, fails = 0;
    for (let a = 0; a < active.length; a++) if (!active[a].sel.has(active[a].codes[i])) { fails++; failed = a; }
    if (fails === 0) { mask[i] = 1; kept++; }
    for (let d = 0; d < dims.length; d++) {
      const c = dims[d].codes[i];
      totals[d][c]++;
      if (fails === 0 || (fails === 1 && active[failed] === dims[d])) counts[d][c]++;
    }
  }
  return { mask: active.length ? mask : null, kept, counts, totals };
}

function update() {
  if (!F.panel) return;
  const r = compute();
  F.mask = r.mask; F.kept = r.kept;
  if (F.panel.map) F.panel.map.setMask(r.mask);
  render(r);
  const n = F.panel.points.ids.length;
  $("filter-summary").textContent = r.mask ? fmt(r.kept) + " of " + fmt(n) + " tokens pass the filters" : "drag over bars or click them to filter the map";
  $("filter-clear").disabled = !r.mask;
}

function render(r) {
  const box = $("histograms"); clear(box);
  F.dims.forEach((d, di) => {
    const h = el("div", null, "hist hist-" + d.kind); h.dataset.dim = d.name;
    h.appendChild(el("div", d.title + (d.sel && d.sel.size ? " · filtered" : ""), "hist-title"));
    const bars = el("div", null, "bars");
    const counts = r.counts[di], totals = r.totals[di];
    let order = d.labels.map((_, b) => b);
    if (d.kind === "set") order.sort((a, b) => totals[b] - totals[a]);
    let peak = 1; for (const b of order) peak = Math.max(peak, totals[b]);
    for (const b of order) {
      if (d.kind === "set" && totals[b] === 0) continue;
      const bar = el("div", null, "bar" + (d.sel && d.sel.size ? (d.sel.has(b) ? " on" : " off") : ""));
      bar.dataset.bin = String(b); bar.dataset.count = String(counts[b]);
      bar.title = d.labels[b] + ": " + fmt(counts[b]) + " of " + fmt(totals[b]);
      const scale = (v) => Math.sqrt(v / peak);  // square root: small bins stay visible next to a huge one
      const all = el("span", null, "all"), part = el("span", null, "part");
      if (d.kind === "range") { all.style.height = (100 * scale(totals[b])) + "%"; part.style.height = (100 * scale(counts[b])) + "%"; }
      else { all.style.width = (100 * scale(totals[b])) + "%"; part.style.width = (100 * scale(counts[b])) + "%"; }
      if (d.kind === "set") {
        bar.appendChild(el("span", d.labels[b], "name tok"));
        const track = el("span", null, "track"); track.appendChild(all); track.appendChild(part); bar.appendChild(track);
        bar.appendChild(el("span", fmt(counts[b]), "count"));
      } else { bar.appendChild(all); bar.appendChild(part); }
      bars.appendChild(bar);
    }
    h.appendChild(bars);
    if (d.kind === "range") {
      const axis = el("div", null, "hist-axis");
      axis.appendChild(el("span", d.labels[0])); axis.appendChild(el("span", d.labels[d.labels.length - 1]));
      h.appendChild(axis);
    }
    box.appendChild(h);
  });
}

function binOf(ev) { const bar = ev.target.closest(".bar"); return bar ? Number(bar.dataset.bin) : null; }
function dimOf(ev) { const h = ev.target.closest(".hist"); return h ? F.dims.find((d) => d.name === h.dataset.dim) : null; }
function setRange(d, a, b) {
  const sel = new Set();
  for (let x = Math.min(a, b); x <= Math.max(a, b); x++) sel.add(x);
  d.sel = sel;
}
function wire() {
  const box = $("histograms");
  box.addEventListener("mousedown", (ev) => {
    const d = dimOf(ev), b = binOf(ev);
    if (!d || b === null || d.kind !== "range") return;
    ev.preventDefault();
    F.drag = { d, from: b, to: b, before: d.sel };
  });
  box.addEventListener("mouseover", (ev) => {
    if (!F.drag) return;
    const d = dimOf(ev), b = binOf(ev);
    if (d !== F.drag.d || b === null || b === F.drag.to) return;
    F.drag.to = b; setRange(d, F.drag.from, b); update();
  });
  window.addEventListener("mouseup", () => {
    if (!F.drag) return;
    const { d, from, to, before } = F.drag; F.drag = null;
    // a click on the only selected bin clears the filter; any other click or drag selects the range
    if (from === to && before && before.size === 1 && before.has(from)) d.sel = null; else setRange(d, from, to);
    update();
  });
  box.addEventListener("click", (ev) => {
    const d = dimOf(ev), b = binOf(ev);
    if (!d || b === null || d.kind !== "set") return;
    const sel = new Set(d.sel || []);
    if (sel.has(b)) sel.delete(b); else sel.add(b);
    d.sel = sel.size ? sel : null;
    update();
  });
  $("filter-clear").addEventListener("click", () => { F.dims.forEach((d) => { d.sel = null; }); update(); });
}

export const filters = {
  build, update, wire,
  mask: () => F.mask || null,
  // select a range of bins programmatically (tests, links): dim name, first and last bin
  brush: (name, a, b) => { const d = F.dims.find((x) => x.name === name); if (d) { setRange(d, a, b); update(); } },
  dims: () => F.dims.map((d) => ({ name: d.name, labels: d.labels, sel: d.sel ? [...d.sel] : null })),
};
