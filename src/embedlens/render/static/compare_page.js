// compare.html: two spaces side by side over EmbedlensMap (pointcloud.js). Data come from the JSON script
// element #embedlens-data (escaped by json_for_script on the Python side). Token strings are untrusted: they
// reach the page only through textContent, never innerHTML. Position i is the same shared token on both maps
// and in the table, so linking the views is passing a position around.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("embedlens-data").textContent);
  const $ = (id) => document.getElementById(id);
  const bytes = EmbedlensMap.bytes;
  const f32 = (b) => new Float32Array(bytes(b).buffer), i32 = (b) => new Int32Array(bytes(b).buffer);
  const n = D.n, k = D.k, LIMIT = 300;
  const overlap = f32(D.overlap), disp = f32(D.displacement), gained = i32(D.gained), lost = i32(D.lost);
  const differs = D.display_a.some((t, i) => t !== D.display_b[i]);
  function el(tag, cls, text, parent) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function neighbours(arr, i) {
    const out = [];
    for (let j = 0; j < k; j++) { const p = arr[i * k + j]; if (p >= 0) out.push(D.display_a[p]); }
    return out;
  }

  // ---- header, figures, notes ------------------------------------------------------------------------------
  $("title").textContent = D.title;
  $("subtitle").textContent = D.subtitle;
  const fig = document.querySelector("#figures tbody");
  for (const f of D.figures) {
    const tr = el("tr", null, null, fig);
    el("td", null, f.name, tr);
    el("td", "value", f.value.toFixed(4), tr);
    el("td", "control", f.mean.toFixed(4) + " ± " + f.std.toFixed(4), tr);
    el("td", "hint", f.hint, tr);
  }
  for (const note of D.notes) el("div", null, note, $("notes"));

  // ---- detail of one token -----------------------------------------------------------------------------------
  function showDetail(i) {
    const box = $("detail");
    box.replaceChildren();
    if (i < 0) { el("span", "label", "hover or click a token on a map or in the table", box); return; }
    const head = el("div", "row", null, box);
    el("span", "tok", D.display_a[i], head);
    if (differs) { el("span", "label", "  in B: ", head); el("span", "tok", D.display_b[i], head); }
    el("span", "label", "  ·  id A " + D.ids_a[i] + " · id B " + D.ids_b[i] + " · overlap " + overlap[i].toFixed(3) +
      " · displacement " + disp[i].toFixed(3) + (D.counts ? " · count " + D.counts[i].toLocaleString("en-US") : ""), head);
    for (const [name, arr] of [["gained in B", gained], ["lost from A", lost]]) {
      const row = el("div", "row", null, box);
      el("span", "label", name + ": ", row);
      const list = neighbours(arr, i);
      if (!list.length) el("span", "label", "none", row);
      list.forEach((t, j) => { if (j) el("span", "label", " · ", row); el("span", "tok", t, row); });
    }
  }

  // ---- linked maps -------------------------------------------------------------------------------------------
  const maps = [];
  let picked = -1, hovered = -1;
  function mark() {
    const rows = hovered >= 0 && hovered !== picked ? [hovered] : [];
    for (const m of maps) {
      m.setOverlay("picked", picked >= 0 ? [picked] : [], { color: "#111111", size: 12, label: true });
      m.setOverlay("linked", rows, { color: "#d62728", size: 14, label: true });
    }
  }
  function hover(i) {
    if (i === hovered) return;
    hovered = i;
    mark();
    showDetail(i >= 0 ? i : picked);
  }
  function pick(i) {
    picked = i;
    mark();
    showDetail(i);
    for (const tr of document.querySelectorAll("#tokens tbody tr")) tr.classList.toggle("picked", Number(tr.dataset.pos) === i);
  }
  if (D.maps) {
    const rgb = bytes(D.maps.rgb), order = i32(D.maps.order);
    const hoverLines = (display, ids) => (i) => [display[i], "overlap " + overlap[i].toFixed(3) + " · displacement " +
      disp[i].toFixed(3), "id " + ids[i]];
    for (const [side, display, ids] of [["a", D.display_a, D.ids_a], ["b", D.display_b, D.ids_b]]) {
      const panel = el("div", "panel", null, $("maps"));
      el("div", "panel-title", D.maps[side].title, panel);
      const box = el("div", "map", null, panel);
      box.id = "map-" + side;
      const m = EmbedlensMap.create(box, { dims: 2, coords: f32(D.maps[side].coords), display, colors: rgb, size: 5,
        order, hover: hoverLines(display, ids) });
      m.on("hover", hover);
      m.on("click", (i) => pick(i));
      maps.push(m);
    }
    const legend = $("legend");
    el("span", null, "colour: neighbourhood overlap (Jaccard of the " + k + " nearest in A and in B)   0", legend);
    const ramp = el("span", null, null, legend);
    ramp.id = "ramp";
    ramp.style.background = "linear-gradient(to right, " + D.maps.ramp.join(", ") + ")";
    el("span", null, "1   · changed tokens are drawn on top", legend);
  }
  window.embedlensCompare = { maps, pick, hover, get picked() { return picked; } };

  // ---- the table -----------------------------------------------------------------------------------------------
  const columns = [["token", (i) => D.display_a[i], "text"]];
  if (differs) columns.push(["in B", (i) => D.display_b[i], "text"]);
  columns.push(["id A", (i) => D.ids_a[i], "num"], ["id B", (i) => D.ids_b[i], "num"],
    ["overlap", (i) => overlap[i], "num", 3], ["displacement", (i) => disp[i], "num", 3]);
  if (D.counts) columns.push(["count", (i) => D.counts[i], "num"]);
  columns.push(["gained in B", (i) => neighbours(gained, i).join("  "), "list"],
    ["lost from A", (i) => neighbours(lost, i).join("  "), "list"]);
  let sortCol = columns.findIndex((c) => c[0] === "overlap"), sortDir = 1;
  const headRow = document.querySelector("#tokens thead tr"), body = document.querySelector("#tokens tbody");
  columns.forEach((c, j) => {
    const th = el("th", null, c[0], headRow);
    th.addEventListener("click", () => { sortDir = sortCol === j ? -sortDir : (c[2] === "num" ? -1 : 1); sortCol = j; render(); });
  });
  function render() {
    const needle = $("filter").value;
    const rows = [];
    for (let i = 0; i < n; i++) if (!needle || D.display_a[i].includes(needle) || D.display_b[i].includes(needle)) rows.push(i);
    const key = columns[sortCol][1];
    const keys = rows.map(key);
    const idx = rows.map((_, j) => j);
    idx.sort((p, q) => (keys[p] < keys[q] ? -sortDir : keys[p] > keys[q] ? sortDir : rows[p] - rows[q]));
    body.replaceChildren();
    for (const j of idx.slice(0, LIMIT)) {
      const i = rows[j];
      const tr = el("tr", i === picked ? "picked" : null, null, body);
      tr.dataset.pos = String(i);
      for (const c of columns) {
        const v = c[1](i);
        el("td", c[2] === "num" ? "num" : "tok", c[3] ? Number(v).toFixed(c[3]) : String(v), tr);
      }
      tr.addEventListener("mouseenter", () => hover(i));
      tr.addEventListener("mouseleave", () => hover(-1));
      tr.addEventListener("click", () => pick(i));
    }
    headRow.querySelectorAll("th").forEach((th, j) => {
      th.classList.toggle("sorted-asc", j === sortCol && sortDir > 0);
      th.classList.toggle("sorted-desc", j === sortCol && sortDir < 0);
    });
    $("shown").textContent = (rows.length > LIMIT ? "first " + LIMIT + " of " : "") + rows.length.toLocaleString("en-US") +
      " tokens · click a column to sort";
  }
  $("filter").addEventListener("input", render);
  render();
  document.documentElement.dataset.drawn = "1";
})();
