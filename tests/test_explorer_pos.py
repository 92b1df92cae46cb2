"""The explorer's part-of-speech filter: served when the vocabulary's tags are cached, a cross-filter histogram."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api")

PCA = "#method=pca&dims=2"


@pytest.fixture(scope="module")
def tagged_explorer(module_cache, tiny_gpt2_dir):
    """A running explorer over the tiny GPT-2 whose vocabulary was tagged first (t-SNE stood in by PCA)."""
    import httpx

    import embedlens
    from embedlens.atlas.projection import Projection
    from embedlens.parts_of_speech import cached_parts_of_speech, pos_names, space_parts_of_speech
    from embedlens.serve import ServerThread, create_app
    from embedlens.serve import explorer as explorer_module

    real = explorer_module.compute_projection

    def quick(view, reduce):
        pca = real(view, reduce.replace(method="pca"))
        return Projection(coords=pca.coords, method=reduce.method, dims=reduce.n_components, seed=reduce.seed,
                          params={}, notes=["test stand-in"])

    mp = pytest.MonkeyPatch()
    mp.setattr(explorer_module, "compute_projection", quick)
    lens = embedlens.load(str(tiny_gpt2_dir))
    untagged = cached_parts_of_speech(lens.input)
    classes, _ = space_parts_of_speech(lens.input)  # as `embedlens map --all --color pos` leaves it
    with ServerThread(create_app([lens])) as url:
        yield {"url": url, "lens": lens, "pos": pos_names(classes), "untagged": untagged,
               "points": httpx.get(url + "api/points", params={"space": 0}, timeout=60).json()}
    mp.undo()


def test_points_carry_the_cached_parts_of_speech_only(tagged_explorer):
    assert tagged_explorer["untagged"] is None  # nothing cached yet: nothing served (the explorer never tags)
    assert tagged_explorer["points"]["pos"] == tagged_explorer["pos"]


@pytest.mark.browser
def test_part_of_speech_histogram_filters_the_map(tagged_explorer, offline_page):
    pos = np.asarray(tagged_explorer["pos"])
    pg, seen = offline_page(tagged_explorer["url"] + PCA, viewport={"width": 1500, "height": 950})
    pg.wait_for_selector("body[data-ready='1']", timeout=60_000)
    pg.wait_for_function("() => Number(document.getElementById('plot-0').dataset.drawn) > 0", timeout=60_000)
    pg.click("#tab-map")
    pg.wait_for_selector(".hist[data-dim='pos'] .bar", timeout=30_000)
    assert pg.text_content(".hist[data-dim='pos'] .hist-title") == "part of speech"
    bars = pg.eval_on_selector_all(".hist[data-dim='pos'] .bar",
                                   "bs => bs.map(b => [b.querySelector('.name').textContent, Number(b.dataset.count)])")
    names, counts = np.unique(pos, return_counts=True)
    assert dict(bars) == dict(zip(names.tolist(), counts.tolist(), strict=True))
    chosen = "fragment"
    index = [name for name, _ in bars].index(chosen)
    pg.click(f".hist[data-dim='pos'] .bar >> nth={index}")
    keep = pos == chosen
    assert pg.text_content("#filter-summary").startswith(f"{keep.sum():,} of {len(pos):,}")
    assert pg.evaluate("() => Array.from(window.embedlens.filters.mask())") == keep.astype(int).tolist()
    pg.click("#filter-clear")
    assert seen.dialogs == [] and seen.errors == []
    assert all(u.startswith(tagged_explorer["url"]) for u in seen.requests), seen.requests
