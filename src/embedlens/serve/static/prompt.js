// The prompt panel: a text's tokens placed on the map and, for a causal model, one token's path through the
// layers (its hidden states projected with the map's PCA).
import { api } from "./api.js";
import { $, clear, el } from "./dom.js";
import { drawOverlays } from "./maps.js";
import { S, writeHash } from "./state.js";

// -- prompt and trajectory ------------------------------------------------------------------------------
export async function placePrompt() {
  S.prompt = $("prompt-text").value; writeHash();
  const box = $("prompt-tokens"); clear(box);
  const sel = $("trajectory-pos"); clear(sel);
  $("trajectory-box").hidden = true;
  $("layers-btn").hidden = true;
  if (!S.prompt.trim()) { S.panels.forEach((P) => { P.overlays.prompt = []; P.overlays.trajectory = null; drawOverlays(P); }); return; }
  let first = null;
  for (const P of S.panels) {
    if (!P.info.has_tokenizer) { P.overlays.prompt = []; continue; }
    try {
      const r = await api("tokens", { space: P.info.index, text: S.prompt });
      P.overlays.prompt = r.rows;
      if (P === firstModel()) {
        first = r;
        r.tokens.forEach((t) => { const chip = el("span", t.position + " " + t.display, "tok"); chip.title = "id " + t.id; box.appendChild(chip); });
      }
    } catch (e) { box.appendChild(el("span", e.message, "error")); P.overlays.prompt = []; }
    drawOverlays(P);
  }
  const P = firstModel();
  if (P && P.info.causal && first) {
    // Trajectory positions count the prompt's non-special tokens (what hidden_states keeps).
    const kept = first.tokens.filter((t) => !P.points.special[first.rows[t.position]]);
    kept.forEach((t, i) => { const o = el("option", i + ": " + t.display); o.value = String(i); sel.appendChild(o); });
    if (S.pos !== null && S.pos < kept.length) sel.value = String(S.pos);
    $("trajectory-box").hidden = kept.length === 0;
    $("layers-btn").hidden = false;
  }
}
function firstModel() { return S.panels.find((P) => P.info.has_tokenizer) || null; }

export async function showTrajectory() {
  const P = firstModel(); if (!P) return;
  S.pos = Number($("trajectory-pos").value); writeHash();
  $("trajectory-note").textContent = "running the model…";
  try {
    const r = await api("trajectory", { space: P.info.index, text: S.prompt, position: S.pos, method: S.method, dims: S.dims });
    P.overlays.trajectory = r;
    $("trajectory-note").textContent = "“" + r.display + "” through layers " + r.layers[0] + "–" + r.layers[r.layers.length - 1] +
      ": purple points are each layer's nearest token (" + r.nearest.map((x) => x.display).join(" → ") + "). " + r.note;
  } catch (e) {
    P.overlays.trajectory = null;
    $("trajectory-note").textContent = e.message;
  }
  drawOverlays(P);
}
