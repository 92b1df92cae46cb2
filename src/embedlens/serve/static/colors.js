// Colourings of the map: an RGB byte per point and channel, plus the legend that explains it.
// Frequency uses the rank of each seen token's count (a quantile scale): corpus counts follow Zipf's law,
// so a linear or plain log scale leaves almost every token at the dark end.
import { clear, el, fmt } from "./dom.js";
import { S } from "./state.js";

const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
const FAITH = ["#b2182b", "#ef8a62", "#fddbc7", "#d1e5f0", "#67a9cf", "#2166ac"];  // low recall red, high blue
const UNSEEN = [205, 205, 205];
// The same classes and colours as embedlens.writing_systems.SCRIPTS / SCRIPT_COLORS.
const SCRIPT_COLORS = { Latin: "#0072B2", Cyrillic: "#D55E00", Greek: "#009E73", CJK: "#CC79A7", Arabic: "#E69F00",
  "other letters": "#56B4E9", digits: "#F0E442", punctuation: "#7f7f7f", whitespace: "#c7c7c7", bytes: "#8c564b",
  special: "#000000" };
const CATEGORY = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
  "#bab0ac", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#17becf"];

function hex(c) { return [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)]; }
function ramp(stops, steps) {  // a 256-entry lookup table interpolated between the stops
  const cs = stops.map(hex), lut = new Uint8Array(steps * 3);
  for (let i = 0; i < steps; i++) {
    const t = (i / (steps - 1)) * (cs.length - 1), a = Math.min(Math.floor(t), cs.length - 2), f = t - a;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(cs[a][c] * (1 - f) + cs[a + 1][c] * f);
  }
  return lut;
}
const LUTS = { viridis: ramp(VIRIDIS, 256), faith: ramp(FAITH, 256) };
const css = (lut, t) => { const i = Math.max(0, Math.min(255, Math.round(t * 255))) * 3; return "rgb(" + lut[i] + "," + lut[i + 1] + "," + lut[i + 2] + ")"; };

// t in [0, 1] per point (NaN: the `nan` colour) -> RGB bytes
function paintRamp(t, lut, nan) {
  const n = t.length, out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const v = t[i];
    if (Number.isNaN(v)) { out[i * 3] = nan[0]; out[i * 3 + 1] = nan[1]; out[i * 3 + 2] = nan[2]; continue; }
    const j = Math.max(0, Math.min(255, Math.round(v * 255))) * 3;
    out[i * 3] = lut[j]; out[i * 3 + 1] = lut[j + 1]; out[i * 3 + 2] = lut[j + 2];
  }
  return out;
}
function categorical(codes, palette) {  // codes: Int32Array of class indices (-1: grey)
  const pal = palette.map(hex), out = new Uint8Array(codes.length * 3);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i] < 0 ? [190, 190, 190] : pal[codes[i] % pal.length];
    out[i * 3] = c[0]; out[i * 3 + 1] = c[1]; out[i * 3 + 2] = c[2];
  }
  return out;
}

// Rank of each seen token's count among the seen tokens, in [0, 1] (ties share their mean rank); 0 -> NaN.
function frequencyRanks(counts) {
  const n = counts.length, seen = [];
  for (let i = 0; i < n; i++) if (counts[i] > 0) seen.push(i);
  seen.sort((a, b) => counts[a] - counts[b]);
  const t = new Float32Array(n).fill(NaN), m = seen.length;
  for (let s = 0; s < m;) {
    let e = s; while (e + 1 < m && counts[seen[e + 1]] === counts[seen[s]]) e++;
    const v = m > 1 ? (s + e) / 2 / (m - 1) : 1;
    for (let j = s; j <= e; j++) t[seen[j]] = v;
    s = e + 1;
  }
  return { t, seen };
}

// The colouring for S.color: {colors, legend}; legend = {title, ramp: [css...], ticks: [[pos, text]]} or
// {title, swatches: [[css, name, count]]}; null colours while the data are still coming.
export function colouring(P) {
  const pts = P.points, n = pts.ids.length;
  if (S.color === "frequency" && P.freq) {
    const { t, seen } = frequencyRanks(P.freq);
    const q = (f) => P.freq[seen[Math.min(seen.length - 1, Math.floor(f * (seen.length - 1)))]];
    const ticks = seen.length ? [0, 0.5, 1].map((f) => [f, (f === 0.5 ? "median " : "") + fmt(q(f))]) : [];
    return { colors: paintRamp(t, LUTS.viridis, UNSEEN), legend: { title: "corpus count (rank scale)", lut: LUTS.viridis, ticks,
      swatches: [["rgb(" + UNSEEN.join(",") + ")", "not in the corpus", n - seen.length]] } };
  }
  if (S.color === "faithfulness" && P.faith && P.faith.local_recall) {
    const lr = P.faith.local_recall, t = new Float32Array(n);
    for (let i = 0; i < n; i++) t[i] = lr[i] === null ? NaN : lr[i];
    return { colors: paintRamp(t, LUTS.faith, [200, 200, 200]), legend: { title: "local recall@" + P.faith.k +
      " (share of true neighbours kept on the map)", lut: LUTS.faith, ticks: [[0, "0"], [0.5, "0.5"], [1, "1"]] } };
  }
  if (S.color === "word") {
    const codes = new Int32Array(n);
    for (let i = 0; i < n; i++) codes[i] = pts.special[i] ? 2 : pts.whole_word[i] ? 0 : 1;
    return swatches(codes, ["#4c78a8", "#f58518", "#333333"], ["whole word", "fragment", "special"], "token kind");
  }
  if (S.color === "script" && pts.script) {
    const names = Object.keys(SCRIPT_COLORS), index = new Map(names.map((s, i) => [s, i])), codes = new Int32Array(n);
    for (let i = 0; i < n; i++) codes[i] = index.has(pts.script[i]) ? index.get(pts.script[i]) : -1;
    return swatches(codes, names.map((s) => SCRIPT_COLORS[s]), names, "writing system");
  }
  if (S.color === "cluster" && P.clusters) {
    const a = P.clusters.assignment, codes = Int32Array.from(a);
    const labels = P.clusters.clusters.map((c) => c.label);
    return swatches(codes, CATEGORY, labels, "cluster", true);
  }
  if (S.color === "changed" && P.change) {
    let other = 0;
    for (let i = 0; i < n; i++) other += Number.isNaN(P.change[i]);
    return { colors: paintRamp(P.change, LUTS.viridis, UNSEEN), legend: { title: "changed: 1 − overlap of the " +
      S.comparison.k + " nearest shared tokens here and in the other panel", lut: LUTS.viridis,
      ticks: [[0, "same"], [0.5, "0.5"], [1, "all new"]], swatches: [["rgb(" + UNSEEN.join(",") + ")", "not in the other space", other]] } };
  }
  // token length, and the fallback while frequencies / faithfulness / clusters are still computed
  let hi = 1;
  const sorted = Float32Array.from(pts.length).sort();
  hi = Math.max(1, sorted[Math.floor(0.99 * (n - 1))]);
  const t = new Float32Array(n);
  for (let i = 0; i < n; i++) t[i] = Math.min(1, (pts.length[i] - 1) / Math.max(1, hi - 1));
  const waiting = S.color !== "length" ? " (" + S.color + " loading)" : "";
  return { colors: paintRamp(t, LUTS.viridis, UNSEEN), legend: { title: "token length" + waiting, lut: LUTS.viridis,
    ticks: [[0, "1"], [0.5, String(Math.round((1 + hi) / 2))], [1, "≥ " + hi]] } };
}

function swatches(codes, palette, names, title, onlyUsed) {
  const counts = new Array(names.length).fill(0);
  for (let i = 0; i < codes.length; i++) if (codes[i] >= 0) counts[codes[i]]++;
  const list = names.map((name, i) => [palette[i % palette.length], name, counts[i]]).filter((s) => s[2] > 0 || !onlyUsed);
  return { colors: categorical(codes, palette), legend: { title, swatches: list.filter((s) => s[2] > 0).slice(0, 40) } };
}

// The legend box of a panel (DOM only; names are untrusted token text -> textContent).
export function drawLegend(box, legend) {
  clear(box);
  if (!legend) return;
  box.appendChild(el("div", legend.title, "legend-title"));
  if (legend.lut) {
    const bar = el("div", null, "legend-ramp");
    bar.style.background = "linear-gradient(to right, " + [0, 0.25, 0.5, 0.75, 1].map((t) => css(legend.lut, t)).join(", ") + ")";
    box.appendChild(bar);
    const ticks = el("div", null, "legend-ticks");
    legend.ticks.forEach(([pos, text]) => { const t = el("span", text); t.style.left = (100 * pos) + "%"; ticks.appendChild(t); });
    box.appendChild(ticks);
  }
  (legend.swatches || []).forEach(([color, name, count]) => {
    const row = el("div", null, "legend-row");
    const sw = el("span", null, "legend-swatch"); sw.style.background = color;
    row.appendChild(sw); row.appendChild(el("span", name, "tok")); row.appendChild(el("span", " " + fmt(count), "note"));
    box.appendChild(row);
  });
}
