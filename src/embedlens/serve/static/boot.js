// Starts the big downloads (labels and the coordinates of the first panel's map) while the page's other
// scripts are still being parsed; maps.js picks the responses up. Same-origin requests only. Without a
// map in the link, the map is the server's default (/api/info's default_map).
"use strict";
(function () {
  if (window.EMBEDLENS_DATA) return;  // a static export: offline.js answers from the data scripts
  const p = new URLSearchParams(location.hash.slice(1));
  const named = ["pca", "tsne", "umap"].includes(p.get("method"));
  const ok = (r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r; };
  const info = fetch("/api/info").then(ok).then((r) => r.json());
  const pre = window.embedlensPrefetch = { key: null, info, points: fetch("/api/points?space=0").then(ok).then((r) => r.json()) };
  const which = named ? Promise.resolve({ method: p.get("method"), dims: p.get("dims") === "3" ? 3 : 2 })
    : p.get("method") ? Promise.resolve(null)  // word axes: computed on request
    : info.then((i) => i.panels[0].default_map || { method: "pca", dims: 2 });
  pre.coords = which.then((m) => {
    if (!m) return null;
    const q = "space=0&method=" + m.method + "&dims=" + m.dims;
    pre.key = q;
    return fetch("/api/projection?" + q).then(ok).then((r) => r.json()).then((s) =>
      s.job.state === "ready" ? fetch("/api/projection/data?" + q).then(ok).then((r) => r.arrayBuffer()) : null);
  });
  for (const k of ["info", "points", "coords"]) pre[k].catch(() => null);
})();
