// The layers view: the prompt's logit lens (rows = layers, columns = tokens), read with the model's own head
// (logit) or its tuned lens (tuned) when it has one; a click on a cell shows that state's nearest tokens.
import { api } from "./api.js";
import { $, clear, el, esc } from "./dom.js";
import { drawOverlays } from "./maps.js";
import { S, writeHash } from "./state.js";
import { neighborTable } from "./token.js";
import { loadPlotly, show } from "./views.js";

const causalPanel = () => S.panels.find((x) => x.info.causal) || null;

// The logit | tuned switch: tuned only when the model's cache entry holds a tuned lens (/api/info's decoders);
// otherwise it stays disabled and says which command trains one.
export function setupDecoderSwitch() {
  const P = causalPanel(), box = $("layers-decoder"), note = $("layers-decoder-note");
  if (!P || !P.info.decoders) { box.hidden = true; return; }
  const tuned = box.querySelector("button[data-decoder=tuned]");
  tuned.disabled = !P.info.decoders.tuned;
  if (tuned.disabled) {
    tuned.title = "no tuned lens for " + P.info.name + " yet: " + P.info.decoders.train;
    note.textContent = "tuned: none for this model yet; train one with " + P.info.decoders.train;
  } else {
    tuned.title = "each layer translated by the model's tuned lens, then read with its head";
    note.textContent = "";
  }
  box.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
    if (b.disabled || S.decoder === b.dataset.decoder) return;
    S.decoder = b.dataset.decoder; syncDecoderSwitch(); writeHash();
    if (S.prompt) showLayers();
  }));
  syncDecoderSwitch();
}

// The switch shows S.decoder (a link may name a decoder this model lacks: then the logit lens).
export function syncDecoderSwitch() {
  const tuned = $("layers-decoder").querySelector("button[data-decoder=tuned]");
  if (S.decoder === "tuned" && tuned.disabled) S.decoder = "logit";
  $("layers-decoder").querySelectorAll("button").forEach((b) => {
    b.classList.toggle("active", b.dataset.decoder === S.decoder); b.setAttribute("aria-pressed", String(b.dataset.decoder === S.decoder));
  });
}

// -- layers: the prompt's logit lens (rows = layers, columns = tokens); a click shows that state's neighbours --
export async function showLayers() {
  const P = causalPanel(); if (!P) return;
  show("layers");
  const note = $("layers-note"); note.textContent = "decoding every layer…";
  clear($("layers-cell"));
  try {
    const decoder = S.decoder;
    const [r] = await Promise.all([api("logit_lens", { space: P.info.index, text: S.prompt, decoder }), loadPlotly()]);
    if (decoder !== S.decoder) return;  // switched meanwhile: the newer answer draws
    await drawLayers(P, r);
    const reader = r.settings.decoder && r.settings.decoder.kind === "tuned" ? "Read with the model's tuned lens. " : "";
    note.textContent = (r.notes.length ? r.notes.join("; ") + ". " : "") + reader + "Colour: probability of the top-1 token. " +
      "Click a cell for the nearest tokens of that state. " + r.settings.semantics;
  } catch (e) { note.textContent = e.message; }
}

function drawLayers(P, r) {
  const text = [], hover = [], z = [];
  r.layers.forEach((layer, li) => {
    const trow = [], hrow = [], zrow = [];
    r.positions.forEach((pos, j) => {
      const top = r.top_display[li][j], probs = r.top_probs[li][j];
      trow.push(esc(top[0].length > 6 ? top[0].slice(0, 5) + "…" : top[0]));
      const nxt = pos + 1 < r.display.length ? esc(r.display[pos + 1]) + ": rank " + r.target_rank[li][j] : "(end of text)";
      hrow.push("layer " + layer + " · position " + pos + ": " + esc(r.display[pos]) + "<br>" +
        top.map((d, m) => (m + 1) + ". " + esc(d) + "  " + probs[m].toFixed(4)).join("<br>") + "<br>next token " + nxt);
      zrow.push(probs[0]);
    });
    text.push(trow); hover.push(hrow); z.push(zrow);
  });
  const data = [{ type: "heatmap", x: r.positions, y: r.layers, z: z, text: text, hovertext: hover, hoverinfo: "text",
    texttemplate: r.positions.length * r.layers.length <= 4000 ? "%{text}" : "", textfont: { size: 10 }, xgap: 1, ygap: 1,
    zmin: 0, zmax: 1, colorscale: "Viridis", colorbar: { title: { text: "p(top-1)" }, thickness: 10 } }];
  const plot = $("layers-plot"), box = plot.parentElement;
  // fill the view; a long prompt gets at least 40 px per token and scrolls sideways
  const layout = { margin: { l: 50, r: 10, t: 10, b: 90 }, height: Math.max(320, box.clientHeight - 8),
    width: Math.max(box.clientWidth - 8, 130 + 40 * r.positions.length),
    xaxis: { tickmode: "array", tickvals: r.positions, ticktext: r.positions.map((p) => esc(r.display[p])), tickangle: -60 },
    yaxis: { title: { text: "layer" } } };
  plot.dataset.layers = String(r.layers.length); plot.dataset.positions = String(r.positions.length);
  plot.dataset.decoder = (r.settings.decoder && r.settings.decoder.kind) || "logit";
  return window.Plotly.react(plot, data, layout, { displaylogo: false }).then(() => {
    if (!plot.dataset.bound) {
      plot.dataset.bound = "1";
      plot.on("plotly_click", (ev) => { const pt = ev && ev.points && ev.points[0]; if (pt) layerCell(pt.y, pt.x); });
    }
  });
}

async function layerCell(layer, position) {
  const P = causalPanel(); if (!P) return;
  const box = $("layers-cell"); clear(box);
  try {
    const r = await api("layer_nearest", { space: P.info.index, text: S.prompt, layer, position, k: S.k, decoder: S.decoder });
    const head = el("p", null, "selected-token");
    head.appendChild(el("span", "layer " + r.layer + " · position " + r.position + " ", "note"));
    head.appendChild(el("span", r.display, "tok"));
    box.appendChild(head);
    box.appendChild(el("p", (S.decoder === "tuned" ? "the tuned lens reads: " : "decodes to: ") + r.top.map((t) => t.display + " " + t.prob.toFixed(3)).join(" · "), "note"));
    box.appendChild(el("p", "nearest " + r.neighbors.length + " tokens of this state (cosine, " + r.space + ")", "note"));
    const table = neighborTable(r, P); table.classList.add("layer-neighbors"); box.appendChild(table);
    P.overlays.neighbors = r.rows; P.overlays.selected = [];
    drawOverlays(P);
  } catch (e) { box.appendChild(el("p", e.message, "error")); }
}
