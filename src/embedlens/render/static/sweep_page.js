// sweep.html: small multiples over EmbedlensMap (pointcloud.js), one map per panel, the same points in the
// same order on each. Hovering a point on one panel marks the same point (with its token) on every other.
// Data come from the JSON script element #embedlens-data (escaped by json_for_script on the Python side).
// Token strings are untrusted: they reach the page only through textContent, never innerHTML.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("embedlens-data").textContent);
  const $ = (id) => document.getElementById(id);
  const bytes = EmbedlensMap.bytes;
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  $("title1").textContent = D.title[0];
  $("title2").textContent = D.title[1];
  if (D.legend) {
    $("legend").appendChild(el("span", "", D.legend_title));
    for (const [color, name] of D.legend) {
      const row = el("span", "legend-row"), sw = el("span", "legend-swatch");
      sw.style.background = color;
      row.append(sw, el("span", "", name));
      $("legend").appendChild(row);
    }
  }
  $("panels").style.gridTemplateColumns = "repeat(" + D.panels.length + ", minmax(0, 1fr))";
  const colors = bytes(D.rgb);
  const hover = (row) => [D.display[row], D.details[row]];
  const maps = D.panels.map((P) => {
    const panel = el("div", "panel");
    const box = el("div", "panel-map");
    panel.append(el("div", "panel-title", P.title), el("div", "panel-quality", P.quality), box);
    $("panels").appendChild(panel);
    return EmbedlensMap.create(box, {
      dims: D.dims, coords: new Float32Array(bytes(P.coords).buffer), display: D.display, hover,
      colors, size: D.size, labels: null, contours: false, axes: [],
    });
  });
  // linked hover: the hovered point's token marked on every other panel (an overlay, labelled)
  maps.forEach((map, i) => map.on("hover", (row) => {
    maps.forEach((other, j) => {
      if (j !== i) other.setOverlay("linked", row >= 0 ? [row] : [], { color: "#d62728", size: 12, label: true });
    });
  }));
  window.embedlensSweep = { maps, n: D.n, display: D.display };
  document.documentElement.dataset.drawn = maps.every((m) => m.canvas.getContext("webgl")) ? "1" : "error";
})();
