// Starts the big downloads (labels and map coordinates of the first panel) while plotly.min.js is
// still being parsed; app.js picks the responses up. Same-origin requests only.
"use strict";
(function () {
  const p = new URLSearchParams(location.hash.slice(1));
  const method = ["pca", "tsne", "umap"].includes(p.get("method")) ? p.get("method") : "pca";
  const dims = p.get("dims") === "3" ? 3 : 2;
  const q = "space=0&method=" + method + "&dims=" + dims;
  const ok = (r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r; };
  window.embedlensPrefetch = {
    key: q,
    info: fetch("/api/info").then(ok).then((r) => r.json()),
    points: fetch("/api/points?space=0").then(ok).then((r) => r.json()),
    coords: fetch("/api/projection?" + q).then(ok).then((r) => r.json()).then((s) =>
      s.state === "ready" ? fetch("/api/projection/data?" + q).then(ok).then((r) => r.arrayBuffer()) : null),
  };
  for (const k of ["info", "points", "coords"]) window.embedlensPrefetch[k].catch(() => null);
})();
