// The token panel of the side bar: a token's nearest neighbours and variants in each panel, with lines on
// the map to its true nearest neighbours in the full space.
import { api } from "./api.js";
import { $, clear, el } from "./dom.js";
import { drawOverlays } from "./maps.js";
import { offline } from "./offline.js";
import { S, writeHash } from "./state.js";

// -- a token: its neighbours and variants in the side bar, lines to its true neighbours on the map --------
export function neighborTable(result, P) {
  const t = el("table", null, "nb");
  const head = el("tr"); ["#", "id", "token", "cosine"].forEach((h) => head.appendChild(el("th", h))); t.appendChild(head);
  result.neighbors.forEach((n, i) => {
    const tr = el("tr");
    tr.dataset.id = String(n.id); tr.dataset.row = String(result.rows[i]);
    tr.appendChild(el("td", i + 1, "num")); tr.appendChild(el("td", n.id, "num"));
    tr.appendChild(el("td", n.display, "tok")); tr.appendChild(el("td", n.score.toFixed(4), "num"));
    tr.addEventListener("click", () => selectToken("id:" + n.id, P.info.index));
    t.appendChild(tr);
  });
  return t;
}

function linkedQuery(q, fromIndex, P) {
  if (fromIndex === null || fromIndex === undefined || P.info.index === fromIndex) return q;
  const src = S.panels[fromIndex];
  const sameVocab = src.info.kind === "model" && P.info.kind === "model" && src.info.n === P.info.n;
  if (sameVocab || !q.startsWith("id:")) return q;
  const row = src.points.ids.indexOf(Number(q.slice(3)));
  if (row < 0) return q;
  return src.points.display[row].replace(/^[␣▁]+/, "").trim() || q;  // the word, for a space with other labels
}

export async function clickToken(P, row) {
  await selectToken("id:" + P.points.ids[row], P.info.index);
}

// Lines from a token to its 10 true nearest neighbours, wherever the map put them.
async function trueNeighbors(P, row) {
  try {
    const r = await api("true_neighbors", { space: P.info.index, row, k: 10 });
    P.overlays.truth = { row, rows: r.rows };
  } catch (e) {
    P.overlays.truth = null;
  }
  drawOverlays(P);
}

export async function selectToken(q, fromIndex) {
  S.token = q; writeHash();
  $("selection").hidden = false;
  const box = $("selection-panels"); clear(box);
  await Promise.all(S.panels.map(async (P) => {
    const part = el("div", null, "sel-panel"); part.dataset.panel = String(P.info.index);
    box.appendChild(part);
    const query = linkedQuery(q, fromIndex, P);
    if (S.panels.length > 1) part.appendChild(el("h3", P.info.title));
    try {
      const nb = await api("neighbors", { space: P.info.index, q: query, k: S.k });
      const head = el("p"); head.className = "selected-token";
      head.appendChild(el("span", nb.query_display.join(" + ") || query, "tok"));
      head.appendChild(el("span", "  ids " + nb.query_ids.join(", "), "note"));
      part.appendChild(head);
      if (nb.note) part.appendChild(el("p", nb.note, "note"));
      part.appendChild(el("p", "nearest " + nb.neighbors.length + " (cosine, " + nb.space + "); red lines on the map: the 10 nearest", "note"));
      const table = neighborTable(nb, P); table.classList.add("neighbors"); part.appendChild(table);
      P.overlays.selected = nb.query_rows; P.overlays.neighbors = nb.rows;
      if (nb.query_rows.length === 1 && nb.query_rows[0] >= 0) trueNeighbors(P, nb.query_rows[0]); else P.overlays.truth = null;
      const word = (nb.query_display[0] || "").replace(/^[␣▁]+/, "").trim();
      if (nb.query_rows.length === 1 && word && !offline) {  // variants search the vocabulary: a server's job
        try {
          const v = await api("variants", { space: P.info.index, q: word });
          part.appendChild(el("p", "variants of “" + word + "”", "note"));
          const vt = neighborTable(v, P); vt.classList.add("variants"); part.appendChild(vt);
        } catch (e) { part.appendChild(el("p", "no variants: " + e.message, "note")); }
      }
    } catch (e) {
      part.appendChild(el("p", query + ": " + e.message, "error"));
      P.overlays.selected = []; P.overlays.neighbors = []; P.overlays.truth = null;
    }
    drawOverlays(P);
  }));
}
