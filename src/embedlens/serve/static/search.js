// The search panel: tokens matching a text or a regular expression, highlighted on every map.
import { api } from "./api.js";
import { $, clear, el, fmt } from "./dom.js";
import { drawOverlays } from "./maps.js";
import { S, writeHash } from "./state.js";
import { selectToken } from "./token.js";

// -- search: exact matches first (the token itself, then with a leading space), then the rest ---------------
function searchOrder(P, rows, q) {
  const d = P.points.display, f = P.freq, want = q.toLowerCase();
  const bare = (s) => s.replace(/^[␣▁Ġ]+/, "");
  const tier = (r) => (d[r] === q ? 0 : bare(d[r]) === q ? 1 : bare(d[r]).toLowerCase() === want ? 2
    : bare(d[r]).toLowerCase().startsWith(want) ? 3 : 4);
  const t = new Map(rows.map((r) => [r, tier(r)]));
  return rows.slice().sort((a, b) => t.get(a) - t.get(b) || (f ? f[b] - f[a] : 0) || d[a].length - d[b].length || a - b)
    .map((r) => ({ row: r, tier: t.get(r) }));
}

export async function runSearch() {
  S.search = $("search").value; S.mode = $("search-mode").value; writeHash();
  const list = $("search-list"); clear(list);
  if (!S.search) { $("search-results").hidden = true; S.panels.forEach((P) => { P.overlays.search = []; drawOverlays(P); }); return; }
  $("search-results").hidden = false;
  const summary = [];
  await Promise.all(S.panels.map(async (P) => {
    try {
      const r = await api("search", { space: P.info.index, q: S.search, mode: S.mode });
      P.overlays.search = r.rows;
      const ordered = S.mode === "text" ? searchOrder(P, r.rows, S.search) : r.rows.map((row) => ({ row, tier: 4 }));
      const exact = ordered.filter((x) => x.tier <= 2).length;
      summary.push((S.panels.length > 1 ? P.info.title + ": " : "") + fmt(r.total) + " matches" +
        (S.mode === "text" ? " · " + fmt(exact) + " exact" : ""));
      if (P.info.index === 0) {
        let last = -1;
        ordered.slice(0, 200).forEach(({ row, tier }) => {
          const group = tier <= 2 ? 0 : 1;
          if (S.mode === "text" && group !== last) {
            list.appendChild(el("li", group === 0 ? "exact" : "containing the text", "group"));
            last = group;
          }
          const li = el("li"); li.dataset.row = String(row); li.dataset.id = String(P.points.ids[row]);
          li.appendChild(el("span", P.points.display[row], "tok"));
          if (P.freq) li.appendChild(el("span", " " + fmt(P.freq[row]), "note"));
          li.addEventListener("click", () => selectToken("id:" + P.points.ids[row], 0));
          list.appendChild(li);
        });
        if (ordered.length > 200) list.appendChild(el("li", "… and " + fmt(ordered.length - 200) + " more on the map", "group"));
      }
    } catch (e) {
      P.overlays.search = [];
      summary.push(e.message);
    }
    drawOverlays(P);
  }));
  $("search-summary").textContent = summary.join(" · ");
}
