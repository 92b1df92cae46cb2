// DOM helpers of the explorer. Token strings are untrusted: they reach the DOM only through textContent;
// Plotly (which renders <br>, <b>... in text) gets them only through esc(), the plotly_text rule of
// embedlens.render.offline (only &, < and >). No innerHTML anywhere.

export const $ = (id) => document.getElementById(id);

const ENT = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
export const esc = (s) => String(s).replace(/[&<>]/g, (c) => ENT[c]);

export function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

export const clear = (node) => { while (node.firstChild) node.removeChild(node.firstChild); };
export const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
export const status = (msg) => { $("status").textContent = msg || ""; };
export const fmt = (x) => (x === null || x === undefined || Number.isNaN(x) ? "" : Number(x).toLocaleString("en-US"));
