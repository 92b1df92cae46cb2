// embedlens notebook widget (anywidget): a toolbar, a caption and one EmbedlensMap. embedlens.render.widget
// sends pointcloud.js (window.EmbedlensMap, the renderer of map.html and the explorer) followed by this
// file as the widget's ES module. Token strings are untrusted: textContent only, never innerHTML.
const WIDGET_CSS = `
.embedlens-widget { font: 13px system-ui, sans-serif; color: #222; }
.embedlens-widget .ew-title { font-weight: 600; }
.embedlens-widget .ew-caption { font-size: 12px; color: #555; white-space: pre-wrap; }
.embedlens-widget .ew-tools { display: flex; gap: 10px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
.embedlens-widget .ew-tools button.on { background: #dde6f3; border-color: #5b7fb0; }
.embedlens-widget .ew-count, .embedlens-widget .ew-help { color: #555; }
.embedlens-widget .ew-map { position: relative; width: 100%; border: 1px solid #e3e3e3; }
`;
const TOOLS = ["pan", "box", "lasso"];

function addWidgetStyle() {
  if (document.getElementById("embedlens-widget-style")) return;
  const s = document.createElement("style");
  s.id = "embedlens-widget-style";
  s.textContent = WIDGET_CSS;
  document.head.appendChild(s);
}

// a Bytes trait arrives as a DataView (ipywidgets 8); copied so typed arrays over it are aligned
function bytesOf(v) {
  if (!v) return new Uint8Array(0);
  if (v instanceof ArrayBuffer) return new Uint8Array(v.slice(0));
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  return new Uint8Array(0);
}
const f32 = (v) => new Float32Array(bytesOf(v).buffer);
const i32 = (v) => { const b = bytesOf(v); return b.length ? new Int32Array(b.buffer) : null; };

function render({ model, el }) {
  addWidgetStyle();
  const freq = bytesOf(model.get("_freq")); // a copy: the model's own state is left as it came
  const D = Object.assign({}, model.get("_data"), { ids: new Float64Array(bytesOf(model.get("_ids")).buffer),
    freq: freq.length ? new Float64Array(freq.buffer) : null });
  const n = D.n, three = D.dims === 3;
  const make = (tag, cls, parent, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    parent.appendChild(e);
    return e;
  };
  const root = make("div", "embedlens-widget", el);
  make("div", "ew-title", root, D.title[0]);
  for (const line of D.caption || []) make("div", "ew-caption", root, line);
  const tools = make("div", "ew-tools", root);
  const toolButtons = {};
  const toolGroup = make("span", "", tools);
  for (const t of TOOLS) {
    const b = make("button", "ew-tool-" + t, toolGroup, t);
    b.type = "button";
    b.addEventListener("click", () => { model.set("tool", t); model.save_changes(); });
    toolButtons[t] = b;
  }
  if (three) toolGroup.style.display = "none"; // box and lasso select on 2-D maps
  const frameButton = make("button", "ew-frame", tools, "frame");
  frameButton.type = "button";
  const labelsBox = make("label", "", tools);
  const labelsInput = make("input", "ew-labels", labelsBox);
  labelsInput.type = "checkbox";
  labelsInput.checked = true;
  labelsBox.appendChild(document.createTextNode(" labels"));
  const clearButton = make("button", "ew-clear", tools, "clear selection");
  clearButton.type = "button";
  const count = make("span", "ew-count", tools);
  make("span", "ew-help", tools, three ? "drag: rotate · wheel: zoom · double-click: frame"
    : "wheel: zoom · right-drag: pan · shift+click: add/remove a token · double-click: frame");
  const stage = make("div", "ew-map", root);
  stage.style.height = model.get("height") + "px";

  const hoverLines = EmbedlensMap.tokenHover(D);
  let priority = null;
  if (D.levels) priority = i32(model.get("_token_priority")) || Int32Array.from({ length: n }, (_, i) => i);
  const map = EmbedlensMap.create(stage, {
    dims: D.dims, coords: f32(model.get("_coords")), display: D.display, hover: hoverLines,
    colors: bytesOf(model.get("_rgb")), size: f32(model.get("_size")), order: i32(model.get("_order")),
    labels: D.levels ? { levels: D.levels, tokenPriority: priority } : null,
    contours: false, axes: D.axes.slice(0, D.dims),
  });
  stage.embedlensMap = map; // for tests and the curious: the component's API (transform, selected...)

  const showCount = () => {
    const k = model.get("_selection").length;
    count.textContent = k ? k.toLocaleString("en-US") + " selected" : "";
    root.dataset.selected = String(k);
  };
  const showTool = () => {
    const t = model.get("tool");
    map.setTool(t);
    for (const u of TOOLS) toolButtons[u].classList.toggle("on", u === t);
  };
  const fromKernel = () => { map.select(model.get("_selection")); showCount(); };
  map.on("select", (rows) => { model.set("_selection", Array.from(rows)); model.save_changes(); showCount(); });
  model.on("change:_selection", fromKernel);
  model.on("change:tool", showTool);
  const resize = () => { stage.style.height = model.get("height") + "px"; map.frame(); };
  model.on("change:height", resize);
  frameButton.addEventListener("click", () => map.frame());
  labelsInput.addEventListener("change", () => map.showLabels(labelsInput.checked));
  clearButton.addEventListener("click", () => { map.select([]); model.set("_selection", []); model.save_changes(); showCount(); });
  showTool();
  fromKernel();
  root.dataset.drawn = map.canvas.getContext("webgl") ? "1" : "error";
  return () => {
    model.off("change:_selection", fromKernel);
    model.off("change:tool", showTool);
    model.off("change:height", resize);
    map.destroy();
  };
}

export default { render };
