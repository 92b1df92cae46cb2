// embedlens explorer, shared core: page state, DOM and API helpers. Token strings are untrusted: they reach
// the DOM only through textContent; Plotly (which renders <br>, <b>... in text) gets them only through
// esc(), the plotly_text rule of embedlens.render.offline (only &, < and >). No innerHTML anywhere.
// All requests go to this server (or, in a static export, to offline.js: no requests at all). The other scripts (colors, filters, selection, views, app) add their
// parts to window.embedlens.
"use strict";

(function () {
  const S = {
    info: null, panels: [], method: null, dims: 2, color: "frequency", k: 20,
    token: null, search: "", mode: "text", prompt: "", pos: null, ready: false,
    axes: { xa: "", xb: "", ya: "", yb: "" }, view: "map", tool: "pan",
    labels: true, contours: false, active: 0,
  };
  const timings = { start: performance.now(), firstPaint: null };
  const E = window.embedlens = { state: S, timings: timings };

  const $ = E.$ = (id) => document.getElementById(id);
  const ENT = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
  E.esc = (s) => String(s).replace(/[&<>]/g, (c) => ENT[c]);
  E.el = function (tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  E.clear = (node) => { while (node.firstChild) node.removeChild(node.firstChild); };
  E.sleep = (ms) => new Promise((res) => setTimeout(res, ms));
  E.status = (msg) => { $("status").textContent = msg || ""; };

  async function answer(r) {
    const body = await r.json().catch(() => ({ error: "bad response (" + r.status + ")" }));
    if (!r.ok) { const e = new Error(body.error || ("HTTP " + r.status)); e.status = r.status; throw e; }
    return body;
  }
  E.api = async function (path, params) {
    const url = "/api/" + path + (params ? "?" + new URLSearchParams(params).toString() : "");
    return answer(await fetch(url, { headers: { Accept: "application/json" } }));
  };
  // Binary answers (the map's float32 coordinates).
  E.binary = async function (path, params) {
    const r = await fetch("/api/" + path + "?" + new URLSearchParams(params).toString());
    if (!r.ok) throw new Error(path + " unavailable (" + r.status + ")");
    return r.arrayBuffer();
  };
  E.post = async function (path, body) {
    return answer(await fetch("/api/" + path, { method: "POST", body: JSON.stringify(body),
      headers: { Accept: "application/json", "Content-Type": "application/json" } }));
  };
  // Poll a background job until it is ready; onState shows progress. Returns null when `alive()` turns false.
  E.poll = async function (path, params, onState, alive, every) {
    for (;;) {
      if (alive && !alive()) return null;
      const r = await E.api(path, params);
      if (r.state === undefined || r.state === "ready") return r;
      if (r.state === "error") throw new Error(r.error || "failed");
      if (onState) onState(r);
      await E.sleep(every || 700);
    }
  };
  E.fmt = (x) => (x === null || x === undefined || Number.isNaN(x) ? "" : Number(x).toLocaleString("en-US"));

  // The first panel of the selection, filters and table: where the user last selected.
  E.activePanel = () => S.panels[S.active] || S.panels[0] || null;
})();
