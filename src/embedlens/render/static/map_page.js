// map.html: a thin page over EmbedlensMap (pointcloud.js). Data come from the JSON script element
// #embedlens-data (escaped by json_for_script on the Python side). Token strings are untrusted: they reach
// the page only through textContent, never innerHTML.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("embedlens-data").textContent);
  const $ = (id) => document.getElementById(id);
  const bytes = EmbedlensMap.bytes;
  const n = D.n, three = D.dims === 3;
  const coords = new Float32Array(bytes(D.coords).buffer);

  // ---- title, colour bar, legend, help -------------------------------------------------------------------
  $("title1").textContent = D.title[0];
  $("title2").textContent = D.title[1];
  if (D.colorbar) {
    $("cbar-title").textContent = D.colorbar.title;
    $("cbar-ramp").style.background = "linear-gradient(to top, " +
      D.colorbar.stops.map((s) => s[1] + " " + (100 * s[0]).toFixed(1) + "%").join(", ") + ")";
    for (const [pos, text] of D.colorbar.ticks) {
      const t = document.createElement("div");
      t.className = "tick";
      t.style.bottom = (100 * pos).toFixed(2) + "%";
      t.textContent = text;
      $("cbar-ticks").appendChild(t);
    }
  } else {
    $("cbar").style.display = "none";
    if (!D.legend) $("stage").classList.add("no-bar"); // the plot takes the colour bar's room
  }
  if (D.legend) { // categorical colours (writing systems, parts of speech): one swatch per class
    const title = document.createElement("div");
    title.textContent = D.legend_title || "script";
    $("legend").appendChild(title);
    for (const [color, name] of D.legend) {
      const row = document.createElement("div");
      row.className = "legend-row";
      const sw = document.createElement("span");
      sw.className = "legend-swatch";
      sw.style.background = color;
      const label = document.createElement("span");
      label.textContent = name;
      row.append(sw, label);
      $("legend").appendChild(row);
    }
  }
  $("help").textContent = three
    ? "drag: rotate · shift+drag or right-drag: pan · wheel: zoom · double-click: frame"
    : "wheel: zoom · right-drag or pan tool: pan · shift+click: add/remove a token · double-click: frame";
  if (three) for (const id of ["tool-box", "tool-lasso", "contours-box"]) $(id).style.display = "none";

  // ---- the map -------------------------------------------------------------------------------------------
  const hoverLines = EmbedlensMap.tokenHover(D);
  // Token labels (the most frequent tokens in view) come after the cluster levels; a map without clusters
  // (PCA, a corpus map) still shows its most frequent tokens when a corpus was counted.
  let priority = D.token_priority ? new Int32Array(bytes(D.token_priority).buffer) : null;
  if (D.levels && !priority) priority = Int32Array.from({ length: n }, (_, i) => i);
  const map = EmbedlensMap.create($("map"), {
    dims: D.dims, coords, display: D.display, hover: hoverLines,
    colors: bytes(D.rgb), size: new Float32Array(bytes(D.size).buffer),
    order: D.order ? new Int32Array(bytes(D.order).buffer) : null,
    labels: D.levels || priority ? { levels: D.levels || [], tokenPriority: priority } : null,
    contours: false, axes: D.axes.slice(0, D.dims),
  });
  $("point-size").addEventListener("input", (e) => map.setPointScale(e.target.value));
  $("show-labels").addEventListener("change", (e) => map.showLabels(e.target.checked));
  $("show-contours").addEventListener("change", (e) => map.showContours(e.target.checked));
  $("frame").addEventListener("click", () => map.frame());
  for (const t of ["pan", "box", "lasso"]) {
    $("tool-" + t).addEventListener("click", () => {
      map.setTool(t);
      for (const u of ["pan", "box", "lasso"]) $("tool-" + u).classList.toggle("on", u === t);
    });
  }
  $("png").addEventListener("click", () => {
    const a = document.createElement("a");
    a.download = "map-view.png";
    a.href = map.toPNG();
    a.click();
  });

  // ---- search: exact token first, then substring; matches drawn as an overlay ------------------------------
  const MAX_MARKS = 500;
  $("search").addEventListener("input", (e) => {
    const q = e.target.value, found = [];
    if (q) {
      for (let i = 0; i < n && found.length < MAX_MARKS; i++) if (D.display[i] === q) found.push(i);
      for (let i = 0; i < n && found.length < MAX_MARKS; i++) if (D.display[i] !== q && D.display[i].includes(q)) found.push(i);
    }
    map.setOverlay("search", found, { color: "#d62728", size: 10, label: found.length <= 20 });
    $("found").textContent = q ? (found.length >= MAX_MARKS ? MAX_MARKS + "+" : found.length) + " match" +
      (found.length === 1 ? "" : "es") : "";
  });

  // ---- the selection: its tokens and a button that copies their ids ----------------------------------------
  const SHOWN = 200;
  function showSelection(rows) {
    $("selection").style.display = rows.length ? "" : "none";
    $("sel-count").textContent = rows.length.toLocaleString("en-US") + " selected";
    const list = $("sel-list");
    list.replaceChildren();
    for (const r of Array.from(rows.slice(0, SHOWN))) {
      const li = document.createElement("li");
      const tok = document.createElement("span");
      tok.className = "tok";
      tok.textContent = D.display[r];
      const id = document.createElement("span");
      id.className = "id";
      id.textContent = String(D.ids[r]);
      li.append(tok, id);
      list.appendChild(li);
    }
    $("sel-more").textContent = rows.length > SHOWN ? "… and " + (rows.length - SHOWN).toLocaleString("en-US") + " more" : "";
  }
  map.on("select", showSelection);
  $("sel-copy").addEventListener("click", () => {
    const text = Array.from(map.selected(), (r) => D.ids[r]).join("\n");
    const done = () => { $("sel-copy").textContent = "copied"; setTimeout(() => { $("sel-copy").textContent = "copy ids"; }, 1200); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
    function fallback() { // file:// pages have no clipboard API: a selected text area and the copy command
      const ta = document.createElement("textarea");
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      document.execCommand("copy");
      ta.remove();
      done();
    }
  });
  $("sel-clear").addEventListener("click", () => { map.select([]); showSelection([]); });

  window.embedlensMap = Object.assign(map, { n, display: D.display, ids: D.ids, coords });
  document.documentElement.dataset.drawn = map.canvas.getContext("webgl") ? "1" : "error";
})();
