"""The WebGL map component (``render/static/pointcloud.js``) in map.html: framing, labels, selection, contours.

One saved map, opened once in headless chromium for the whole module: planted groups (each with two
sub-groups) in the full space and on the map, a few far outliers, hostile tokens and corpus counts. Every
figure the page shows is checked against numpy on the same coordinates and the page's own transform
(``map.transform()``: screen x = left + width / 2 + (x - cx) * scale, y = top + height / 2 - (y - cy) * scale).
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import MARKUP_TOKENS

HOSTILE = [*MARKUP_TOKENS, "<script>alert(1)</script>", 'say "hi"', "a > b & c"]
GROUPS, SUBS, PER = 6, 2, 70
VIEWPORT = {"width": 1100, "height": 760}


def view_result():
    """An AtlasResult whose clusters and sub-clusters are found on planted data, with outliers and hostile tokens."""
    from embedlens.atlas import AtlasResult
    from embedlens.atlas.clusters import find_clusters

    rng = np.random.default_rng(7)
    n = GROUPS * SUBS * PER
    group = np.repeat(np.arange(GROUPS), SUBS * PER)
    sub = np.repeat(np.arange(GROUPS * SUBS), PER)
    centres = rng.standard_normal((GROUPS, 32)) * 6.0
    sub_shift = rng.standard_normal((GROUPS * SUBS, 32)) * 0.6
    X = (centres[group] + sub_shift[sub] + rng.standard_normal((n, 32))).astype(np.float32)
    angle = 2 * np.pi * group / GROUPS
    coords = np.column_stack([30 * np.cos(angle), 30 * np.sin(angle)])
    coords += np.column_stack([np.where(sub % 2, 5.0, -5.0), np.zeros(n)]) + rng.standard_normal((n, 2)) * 2.0
    coords[:4] = [[900.0, 5.0], [-700.0, -20.0], [10.0, 800.0], [0.0, -1200.0]]  # far outliers
    display = [f"g{g}s{s}_{i}" for i, (g, s) in enumerate(zip(group, sub, strict=True))]
    for k, token in enumerate(HOSTILE):  # one hostile token per sub-group, a little above it (alone under the mouse)
        display[10 + k * PER] = token
        coords[10 + k * PER] = coords[sub == k].mean(axis=0) + [0.0, 7.0]
    freq = rng.integers(1, 50, size=n)
    freq[[10 + k * PER for k in range(len(HOSTILE))]] = 10_000
    clustering = find_clusters(X, clusters="auto", display=display, coords=coords, frequencies=freq, seed=0)
    return AtlasResult(coords=coords.astype(np.float32), ids=np.arange(n) + 1000, labels=display, display=display,
                       frequencies=freq.astype(np.int64), quality=None, model={"name": "planted"}, space="planted",
                       method="umap", dims=2, metric="cosine", seed=0, clustering=clustering)


@pytest.fixture(scope="module")
def view(tmp_path_factory, offline_module_page):
    result = view_result()
    folder = tmp_path_factory.mktemp("map-view")
    result.save(folder, png=True)
    page, seen = offline_module_page(folder / "map.html", viewport=VIEWPORT)
    page.wait_for_function("() => document.documentElement.dataset.drawn === '1'", timeout=30_000)
    return result, page, seen, folder


def screen(result, t) -> np.ndarray:
    """Client (page) coordinates of every point under the page's transform ``t``, computed here."""
    return screen_of(result.coords, t)


def screen_of(coords, t) -> np.ndarray:
    xy = np.asarray(coords, dtype=np.float64)
    return np.column_stack([t["left"] + t["width"] / 2 + (xy[:, 0] - t["cx"]) * t["scale"],
                            t["top"] + t["height"] / 2 - (xy[:, 1] - t["cy"]) * t["scale"]])


def set_zoom(page, zoom: float, at=None):
    """Zoom to ``zoom`` times the framed view, centred on the data point ``at`` (default: the framed centre)."""
    page.evaluate("""([z, at]) => { const m = embedlensMap; m.frame(); const t = m.transform();
        m.setView({cx: at ? at[0] : t.cx, cy: at ? at[1] : t.cy, scale: t.homeScale * z}); m.draw(); }""", [zoom, at])
    return page.evaluate("() => embedlensMap.transform()")


def shown_labels(page):
    """Every shown label as the DOM holds it: level, text, box (client px) and its leader line's anchor end."""
    return shown_labels_of(page, "embedlensMap")


def shown_labels_of(page, name: str):
    return page.evaluate("""(name) => {
        const lines = Array.from(document.querySelectorAll('line.em-leader')).filter((l) => l.style.display !== 'none');
        const r = window[name].canvas.getBoundingClientRect();
        return Array.from(document.querySelectorAll('.em-label')).filter((e) => e.style.display !== 'none')
          .map((e, k) => { const b = e.getBoundingClientRect();
            const line = lines.find((l) => l.dataset.label === String(k));
            return {level: e.dataset.level, id: Number(e.dataset.id), text: e.textContent,
                    box: [b.left, b.top, b.right, b.bottom],
                    leader: line ? [r.left + Number(line.getAttribute('x1')), r.top + Number(line.getAttribute('y1'))] : null}; });
    }""", name)


@pytest.mark.browser
def test_the_framed_view_holds_the_bulk_while_far_outliers_stay_out(view):
    from embedlens.render.framing import bulk_bounds, share_inside

    result, page, seen, _ = view
    t = set_zoom(page, 1.0)
    xy = screen(result, t)
    inside = ((xy[:, 0] >= t["left"]) & (xy[:, 0] <= t["left"] + t["width"]) & (xy[:, 1] >= t["top"])
              & (xy[:, 1] <= t["top"] + t["height"]))
    assert inside.mean() >= 0.95 and not inside[:4].any()  # the outliers would have shrunk the map 20-fold
    bounds = bulk_bounds(result.coords)  # the same box in numpy: the page frames exactly it
    np.testing.assert_allclose(np.array(t["bulk"])[:2], np.quantile(result.coords, [0.005, 0.995], axis=0).T, rtol=1e-5)
    span = bounds[:, 1] - bounds[:, 0]
    assert t["scale"] == pytest.approx(min(t["width"] / span[0], t["height"] / span[1]), rel=1e-5)
    assert share_inside(result.coords, bounds) >= 0.95
    t = set_zoom(page, 0.02)  # zoomed out: every outlier is on the canvas again
    xy = screen(result, t)
    assert ((xy[:4, 0] > t["left"]) & (xy[:4, 0] < t["left"] + t["width"])).all()


@pytest.mark.browser
def test_labels_never_overlap_sit_on_their_medians_and_get_finer_when_zoomed_in(view):
    from embedlens.render.labels import overlaps

    result, page, seen, _ = view
    levels = result.label_levels()
    assert [lv["name"] for lv in levels] == ["clusters", "sub-clusters"] and len(levels[1]["labels"]) > len(levels[0]["labels"])
    xy = np.asarray(result.coords, dtype=np.float64)
    seen_levels = []
    for zoom, level in [(1.0, "clusters"), (3.5, "sub-clusters"), (12.0, "tokens")]:
        # zoomed in on one group; at the finest level, on a hostile token (it has the top count)
        at = None if zoom == 1.0 else [30.0, 0.0] if level != "tokens" else result.coords[10].tolist()
        t = set_zoom(page, zoom, at=at)
        labels = shown_labels(page)
        assert labels and {lab["level"] for lab in labels} == {level}, (zoom, labels)
        boxes = np.array([lab["box"] for lab in labels])
        assert not overlaps(boxes), zoom
        seen_levels.append(len(labels))
        for lab in labels:
            box = lab["box"]
            if level == "tokens":  # beside its own point, which is on the canvas
                assert lab["text"] == result.display[lab["id"]]
                p = screen(result, t)[lab["id"]]
                gap = np.hypot(max(box[0] - p[0], 0, p[0] - box[2]), max(box[1] - p[1], 0, p[1] - box[3]))
                assert gap <= 8, (lab, p)
                continue
            lv = levels[0 if level == "clusters" else 1]
            assert lab["text"] == lv["labels"][lab["id"]]
            members = np.asarray(lv["assignment"]) == lab["id"]
            median = np.median(xy[members], axis=0)
            ax = t["left"] + t["width"] / 2 + (median[0] - t["cx"]) * t["scale"]
            ay = t["top"] + t["height"] / 2 - (median[1] - t["cy"]) * t["scale"]
            on_it = box[0] - 0.5 <= ax <= box[2] + 0.5 and box[1] - 0.5 <= ay <= box[3] + 0.5
            assert on_it or (lab["leader"] is not None and np.hypot(lab["leader"][0] - ax, lab["leader"][1] - ay) < 1.0), \
                (lab, ax, ay)
    # the finest level names the most frequent tokens in view first (the hostile tokens have the top counts)
    tokens = {lab["text"] for lab in shown_labels(page)}
    t = page.evaluate("() => embedlensMap.transform()")
    p = screen(result, t)
    visible = np.flatnonzero((p[:, 0] > t["left"] + 80) & (p[:, 0] < t["left"] + t["width"] - 80)
                             & (p[:, 1] > t["top"] + 40) & (p[:, 1] < t["top"] + t["height"] - 40))
    top = visible[np.argmax(result.frequencies[visible])]
    assert result.display[top] in tokens and result.frequencies[top] == 10_000
    assert not seen.errors


@pytest.mark.browser
def test_a_lasso_drawn_with_the_mouse_selects_exactly_the_points_inside(view):
    from matplotlib.path import Path

    result, page, seen, _ = view
    t = set_zoom(page, 1.0)
    page.click("#tool-lasso")
    cx, cy = t["left"] + t["width"] / 2 + 30 * t["scale"], t["top"] + t["height"] / 2  # group 0, at (30, 0)
    angles = np.linspace(0, 2 * np.pi, 13)[:-1]
    radius = np.where(np.arange(12) % 2, 45, 110)  # a star: concave, so the even-odd test matters
    poly = np.column_stack([np.rint(cx + radius * np.cos(angles)), np.rint(cy + radius * np.sin(angles))])
    page.mouse.move(*poly[0])
    page.mouse.down()
    for x, y in poly[1:]:
        page.mouse.move(x, y)
    page.mouse.up()
    page.wait_for_function("() => embedlensMap.selected().length > 0", timeout=5_000)
    got = np.array(page.evaluate("() => Array.from(embedlensMap.selected())"))
    expected = np.flatnonzero(Path(poly).contains_points(screen(result, t)))
    assert 50 < expected.size < len(result) - 50
    np.testing.assert_array_equal(np.sort(got), expected)
    # the page lists the selection; shift-click adds one more point
    assert page.text_content("#sel-count") == f"{expected.size:,} selected"
    outside = int(np.setdiff1d(np.arange(4, len(result)), expected)[0])
    x, y = screen(result, t)[outside]
    page.keyboard.down("Shift")
    page.mouse.click(x, y)
    page.keyboard.up("Shift")
    after = page.evaluate("() => Array.from(embedlensMap.selected())")
    assert sorted(after) == sorted([*expected.tolist(), outside])
    page.click("#sel-clear")
    page.click("#tool-pan")
    assert page.evaluate("() => embedlensMap.selected().length") == 0


@pytest.mark.browser
def test_hover_and_labels_read_hostile_tokens_exactly_and_nothing_leaves_the_page(view):
    result, page, seen, folder = view
    t = set_zoom(page, 1.0)
    xy = screen(result, t)
    for token in HOSTILE:
        row = result.display.index(token)
        page.mouse.move(t["left"] + 3, t["top"] + 3)
        page.mouse.move(*xy[row])
        page.wait_for_function("(t) => (document.querySelector('.em-tip-main') || {}).textContent === t", arg=token,
                               timeout=5_000)
        assert page.evaluate("() => document.querySelector('.em-tip-main').children.length") == 0
        lines = page.eval_on_selector_all(".em-tip-line", "els => els.map(e => e.textContent)")
        assert lines[0] == f"id {result.ids[row]}" and lines[1] == "frequency 10,000"
    names = {c.label for c in result.clustering.clusters}
    assert {lab["text"] for lab in shown_labels(page)} <= names
    assert any("<script>" in lab["text"] or "&amp;" in lab["text"] for lab in shown_labels(page))
    assert page.evaluate("() => document.querySelectorAll('script').length") == 2
    assert not seen.dialogs and not seen.errors
    assert seen.requests and all(u.startswith(("file://", "data:", "blob:")) for u in seen.requests), seen.requests
    page.screenshot(path=str(folder / "view.png"))


@pytest.mark.browser
def test_density_contours_and_the_png_of_the_view(view):
    import base64
    from io import BytesIO

    from PIL import Image

    result, page, seen, _ = view
    set_zoom(page, 1.0)
    assert page.evaluate("() => embedlensMap.stats().contourSegments") == 0
    page.check("#show-contours")
    page.evaluate("() => embedlensMap.draw()")
    assert page.evaluate("() => embedlensMap.stats().contourSegments") > 50
    ink = page.evaluate("""() => { const c = document.querySelector('canvas.em-contours');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let k = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) k++; return k; }""")
    assert ink > 500
    url = page.evaluate("() => embedlensMap.toPNG()")
    picture = Image.open(BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    assert picture.size[0] >= VIEWPORT["width"] - 120 and np.asarray(picture).std() > 10
    page.uncheck("#show-contours")
    page.evaluate("() => embedlensMap.draw()")
    assert page.evaluate("() => embedlensMap.stats().contourSegments") == 0
    assert not seen.errors


def test_png_frames_the_bulk_and_labels_the_cluster_medians():
    from embedlens.render.atlas import draw_atlas
    from embedlens.render.framing import bulk_bounds
    from embedlens.render.labels import overlaps

    result = view_result()
    fig, texts, boxes = draw_atlas(result, dpi=60)
    try:
        ax = fig.axes[0]
        bounds = bulk_bounds(result.coords)
        np.testing.assert_allclose([ax.get_xlim(), ax.get_ylim()], bounds, rtol=1e-6)
        assert not overlaps(boxes)
        labels = {c.label: c for c in result.clustering.clusters}
        named = [t for t in texts if t.get_text() in labels]
        assert len(named) == len(labels)
        for t in named:  # on the median, or joined to it by a leader line
            c = labels[t.get_text()]
            anchor = ax.transData.transform(np.asarray(c.center[:2]))
            np.testing.assert_allclose(c.center, np.median(result.coords[result.clustering.assignment == c.id], axis=0),
                                       atol=1e-5)
            box = t.get_window_extent(fig.canvas.get_renderer())
            holds = box.x0 - 3 <= anchor[0] <= box.x1 + 3 and box.y0 - 3 <= anchor[1] <= box.y1 + 3
            ends = [np.array(line.get_xydata()[0]) for line in fig.artists if hasattr(line, "get_xydata")]
            assert holds or any(np.hypot(*(e - anchor)) < 1.0 for e in ends), t.get_text()
    finally:
        fig.clear()


def test_sub_clusters_nest_inside_clusters_and_save_and_load(tmp_path):
    import pyarrow.parquet as pq

    from embedlens.atlas import AtlasResult

    result = view_result()
    c, s = result.clustering, result.sub_clustering
    assert len(s) > len(c) >= GROUPS - 1
    for sid in range(len(s)):  # every sub-cluster lies inside one cluster
        assert np.unique(c.assignment[s.assignment == sid]).size == 1
    assert (s.assignment[c.assignment < 0] < 0).all()
    sizes = np.bincount(s.assignment[s.assignment >= 0])
    assert [x.size for x in s.clusters] == sizes.tolist() and np.all(np.diff(sizes) <= 0)  # ids by size
    levels = result.label_levels()
    assert levels[1]["assignment"] == s.assignment.tolist() and levels[1]["sizes"] == sizes.tolist()
    result.save(tmp_path, png=False)
    assert pq.read_table(tmp_path / "points.parquet").column("subcluster").to_pylist() == s.assignment.tolist()
    back = AtlasResult.load(tmp_path)
    assert back.label_levels() == levels


@pytest.mark.browser
def test_mask_box_selection_overlays_events_and_a_swapped_map(view):
    result, page, seen, _ = view
    t = set_zoom(page, 1.0)
    xy = screen(result, t)
    rows = np.arange(GROUPS * SUBS * PER)
    group0 = (rows >= 4) & (rows < SUBS * PER)  # group 0 without the far outliers (rows 0-3)
    page.evaluate("""() => { window.events = {select: [], hover: []};
        embedlensMap.on('select', (rows) => events.select.push(Array.from(rows)));
        embedlensMap.on('hover', (row) => events.hover.push(row)); }""")
    box = np.rint([xy[group0, 0].min() - 20, xy[group0, 1].min() - 20, xy[group0, 0].max() + 20,
                   xy[group0, 1].max() + 20])
    inside = np.flatnonzero((xy[:, 0] >= box[0]) & (xy[:, 0] <= box[2]) & (xy[:, 1] >= box[1]) & (xy[:, 1] <= box[3]))

    def drag_box():
        page.click("#tool-box")
        page.mouse.move(box[0], box[1])
        page.mouse.down()
        page.mouse.move((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        page.mouse.move(box[2], box[3])
        page.mouse.up()
        return np.array(page.evaluate("() => events.select[events.select.length - 1]"))

    np.testing.assert_array_equal(drag_box(), inside)  # the box tool, checked against numpy
    # a mask: filtered-out points are neither selected nor hovered
    page.evaluate("(rows) => embedlensMap.setMask(Uint8Array.from({length: embedlensMap.n}, (_, i) => rows.includes(i) ? 0 : 1))",
                  np.flatnonzero(group0).tolist())
    np.testing.assert_array_equal(drag_box(), inside[~group0[inside]])
    hostile = result.display.index(HOSTILE[0])  # in group 0: masked
    page.mouse.move(*xy[hostile])
    page.wait_for_timeout(150)
    assert page.evaluate("() => embedlensMap.stats().hovered") == -1
    page.evaluate("() => embedlensMap.setMask(null)")
    page.mouse.move(*xy[hostile] + [0.4, 0])
    page.wait_for_function("(r) => embedlensMap.stats().hovered === r", arg=hostile, timeout=5_000)
    page.mouse.move(t["left"] + 2, t["top"] + 2)
    page.wait_for_function("() => events.hover[events.hover.length - 1] === -1", timeout=5_000)
    assert hostile in page.evaluate("() => events.hover")
    # a labelled overlay names its rows exactly; an empty one clears it
    rows = [result.display.index(tok) for tok in HOSTILE[:3]]
    page.evaluate("(rows) => { embedlensMap.setOverlay('found', rows, {label: true}); embedlensMap.draw(); }", rows)
    named = [lab["text"] for lab in shown_labels(page) if lab["level"] == "overlay"]
    assert sorted(named) == sorted(HOSTILE[:3])
    page.evaluate("() => { embedlensMap.setOverlay('found', []); embedlensMap.draw(); }")
    assert not [lab for lab in shown_labels(page) if lab["level"] == "overlay"]
    # another map of the same points (x2, shifted): reframed, labels at the new medians
    page.evaluate("""() => { const c = embedlensMap.coords.map((v, i) => i % 2 ? v * 2 - 50 : v * 2 + 100);
        embedlensMap.setCoords(c, 2); embedlensMap.draw(); }""")
    moved = result.coords * 2 + np.array([100.0, -50.0])
    t2 = page.evaluate("() => embedlensMap.transform()")
    assert t2["homeScale"] == pytest.approx(t["homeScale"] / 2, rel=1e-3)
    assert t2["cx"] == pytest.approx(2 * t["cx"] + 100, abs=1e-3) and t2["cy"] == pytest.approx(2 * t["cy"] - 50, abs=1e-3)
    levels = result.label_levels()
    for lab in shown_labels(page):
        median = np.median(moved[np.asarray(levels[0]["assignment"]) == lab["id"]], axis=0)
        ax = t2["left"] + t2["width"] / 2 + (median[0] - t2["cx"]) * t2["scale"]
        ay = t2["top"] + t2["height"] / 2 - (median[1] - t2["cy"]) * t2["scale"]
        b = lab["box"]
        assert (b[0] - 0.5 <= ax <= b[2] + 0.5 and b[1] - 0.5 <= ay <= b[3] + 0.5) or lab["leader"] is not None
    page.evaluate("() => { embedlensMap.setCoords(embedlensMap.coords, 2); embedlensMap.select([]); }")
    page.click("#tool-pan")
    assert not seen.errors


@pytest.mark.browser
def test_the_component_alone_in_a_small_container(tmp_path, offline_module_page):
    """EmbedlensMap as the explorer uses it: one script, a sized container, plain arrays, default hover."""
    from importlib import resources

    from embedlens.render.offline import json_for_script

    js = resources.files("embedlens.render").joinpath("static/pointcloud.js").read_text(encoding="utf-8")
    rng = np.random.default_rng(3)
    coords = np.concatenate([rng.standard_normal((150, 2)), rng.standard_normal((150, 2)) + [6.0, 0.0]])
    display = [f"t{i}" for i in range(300)]
    display[7], display[200] = "<script>alert(1)</script>", 'a "b" &amp; c'
    data = {"coords": coords.ravel().tolist(), "display": display,
            "levels": [{"name": "clusters", "assignment": [0] * 150 + [1] * 150, "labels": ["left <b>", "right &"],
                        "sizes": [150, 150]}]}
    (tmp_path / "alone.html").write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
        "<div id='box' style='width:600px;height:400px;margin:30px'></div>"
        f"<script type='application/json' id='d'>{json_for_script(data)}</script><script>{js}</script><script>"
        "const D = JSON.parse(document.getElementById('d').textContent);"
        "window.m = EmbedlensMap.create(document.getElementById('box'), {dims: 2, coords: new Float32Array(D.coords),"
        " display: D.display, size: 6, labels: {levels: D.levels, tokenPriority: null}});"
        "</script></body></html>", encoding="utf-8")
    page, seen = offline_module_page(tmp_path / "alone.html")
    t = page.evaluate("() => m.transform()")
    assert (t["width"], t["height"]) == (600, 400)
    texts = sorted(lab["text"] for lab in shown_labels_of(page, "m"))
    assert texts == ["left <b>", "right &"]
    xy = screen_of(coords, t)
    for row in (7, 200):
        page.mouse.move(*xy[row])
        page.wait_for_function("(t) => (document.querySelector('.em-tip-main') || {}).textContent === t",
                               arg=display[row], timeout=5_000)
    page.evaluate("() => m.destroy()")
    assert page.evaluate("() => document.getElementById('box').children.length") == 0
    assert not seen.errors and not seen.dialogs
    assert all(u.startswith(("file://", "data:", "blob:")) for u in seen.requests), seen.requests
    page.close()
