// The clusters panel: labelled clusters found by the server on the space's k-NN graph (the answer's result is
// Clustering.to_dict(); each row's cluster and the label levels come beside it); labels on the map; a click
// selects a cluster.
import { poll } from "./api.js";
import { $, clear, el, fmt } from "./dom.js";
import { filters } from "./filters.js";
import { labels, paint } from "./maps.js";
import { selection } from "./selection.js";
import { S, activePanel } from "./state.js";

// -- clusters: found on the space's k-NN graph by the server; labels on the map; a click selects one -------
export async function runClusters() {
  const raw = $("clusters-n").value.trim() || "auto";
  const P = S.panels[0];
  if (!P) return;
  try {
    const r = await poll("clusters", { space: P.info.index, n: raw },
      (s) => { $("clusters-summary").textContent = "finding clusters · " + s.state + " " + (s.elapsed_s || 0).toFixed(1) + " s"; }, null, 500);
    showClusters(P, { ...r.result, assignment: r.assignment, levels: r.levels });
  } catch (e) { $("clusters-summary").textContent = "clusters: " + e.message; }
}
// found: Clustering.to_dict() with `assignment` and `levels`
function showClusters(P, found) {
  P.clusters = found; P.clusterLabel = null;
  const list = $("clusters-list"); clear(list);
  $("clusters-summary").textContent = found.clusters.length + " clusters (" + found.method + " on the " + found.found_on +
    "); mean pairwise cosine, all tokens " + found.map_mean_cosine.toFixed(3) + ". Click one to select its tokens.";
  found.clusters.forEach((c) => {
    const li = el("li"); li.dataset.cluster = String(c.id);
    li.appendChild(el("span", c.label, "tok cluster-label"));
    li.appendChild(el("span", " · " + fmt(c.size) + " tokens · cos " + c.mean_cosine.toFixed(3), "note"));
    li.addEventListener("click", () => selectCluster(P, c, li));
    list.appendChild(li);
  });
  labels(P);
  if (S.color === "cluster") paint(P);
  if (P === activePanel()) filters.build();
  selection.refresh();
}
function selectCluster(P, c, li) {
  const rows = [];
  P.clusters.assignment.forEach((a, i) => { if (a === c.id) rows.push(i); });
  document.querySelectorAll("#clusters-list li").forEach((x) => x.classList.toggle("active", x === li));
  selection.set(P, rows);
}
