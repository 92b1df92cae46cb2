"""The notebook widget end to end in a real JupyterLab: run a cell, lasso on the page, read ``w.selected`` in the kernel.

JupyterLab runs on 127.0.0.1 with a random token in a temporary folder (its settings, runtime files and
kernel there too); headless chromium drives it through the app's command registry. The map is the planted
one of ``test_map_view`` (groups, sub-clusters, hostile tokens): the points inside the lasso are computed
here from the coordinates and the page's transform, independently of the page's own polygon test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from .conftest import skip_unless_installed
from .test_map_view import HOSTILE, draw_star, screen, view_result

skip_unless_installed("anywidget", "jupyterlab")

VIEWPORT = {"width": 1400, "height": 1000}


def notebook(folder: Path) -> dict:
    cells = [
        "import json, os\nimport embedlens\nfrom embedlens.atlas import AtlasResult\n"
        f"w = embedlens.widget(AtlasResult.load({str(folder)!r}), height=480)\nheard = []\nw.on_select(heard.append)\n"
        "print(os.getpid())\nw",
        "print(json.dumps({'selected': w.selected, 'heard': heard[-1] if heard else None}))",
        "w.selected = IDS\nprint(json.dumps(w.selected_tokens))",
    ]
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": f"c{k}", "metadata": {}, "execution_count": None, "outputs": [],
                       "source": src} for k, src in enumerate(cells)]}


class JupyterLab:
    """``jupyter lab`` on 127.0.0.1 (port 0: the server picks one) in ``root``; stopped by :meth:`stop`."""

    def __init__(self, root: Path) -> None:
        self.token = secrets.token_hex(16)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                             os.environ.get("PYTHONPATH", "")])}
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                         ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                         ("IPYTHONDIR", "ipython")):
            env[var] = str(root / ".jupyter" / sub)
        # no kernel dialog, no news or update checks (they would ask a website)
        for name, value in (("notebook-extension/tracker", {"autoStartDefaultKernel": True}),
                            ("apputils-extension/notification", {"checkForUpdates": False, "fetchNews": "false",
                                                                 "doNotDisturbMode": True})):
            path = root / ".jupyter" / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value), encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}", "--allow-root",
             "--ServerApp.terminals_enabled=False", "--LabApp.expose_app_in_browser=True",
             "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             "--LabApp.extension_manager=readonly"],
            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        found = threading.Event()

        def read() -> None:
            for line in self.proc.stderr:
                self.log.append(line)
                if not found.is_set() and re.search(r"http://127\.0\.0\.1:\d+/", line):
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 30
        while not found.wait(0.2) and self.proc.poll() is None and time.monotonic() < deadline:
            pass
        if not found.is_set():
            self.stop()
            pytest.fail("JupyterLab did not start:\n" + "".join(self.log[-20:]))
        self.base = re.search(r"(http://127\.0\.0\.1:\d+)/", "".join(self.log)).group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:  # shuts down its kernels, then itself
                req = urllib.request.Request(f"{self.base}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {self.token}"})
                urllib.request.urlopen(req, timeout=10).close()
                self.proc.wait(15)
            except Exception:  # noqa: BLE001 - whatever failed, the server must not outlive the test
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(10)


def run_cell(page, index: int) -> str:
    """Run cell ``index`` through JupyterLab's own command (once the kernel is idle) and return its text output."""
    page.wait_for_function("() => { const p = window.jupyterapp.shell.currentWidget; const k = p.sessionContext.session"
                           " && p.sessionContext.session.kernel; return p.sessionContext.isReady && k"
                           " && k.connectionStatus === 'connected' && k.status === 'idle'; }", timeout=60_000)
    page.evaluate("""(i) => { const app = window.jupyterapp, panel = app.shell.currentWidget;
        app.shell.activateById(panel.id); panel.content.activeCellIndex = i;
        return Promise.race([app.commands.execute('notebook:run-cell'), new Promise((ok) => setTimeout(ok, 15000))]); }""",
                  index)
    cell = f".jp-Notebook .jp-Cell:nth-child({index + 1})"
    page.wait_for_function("(sel) => { const p = document.querySelector(sel + ' .jp-InputPrompt');"
                           " return p && /\\[\\d+\\]/.test(p.textContent); }", arg=cell, timeout=60_000)
    return page.eval_on_selector_all(f"{cell} .jp-OutputArea-output pre", "els => els.map(e => e.textContent).join('')")


def transform(page) -> dict:
    return page.evaluate("() => document.querySelector('.ew-map').embedlensMap.transform()")


@pytest.mark.browser
@pytest.mark.slow
def test_lasso_in_jupyterlab_reads_back_in_the_kernel_and_the_kernel_selects_on_the_page(tmp_path, offline_page):
    from matplotlib.path import Path as Polygon

    result = view_result()
    result.save(tmp_path / "map", png=False)
    (tmp_path / "widget.ipynb").write_text(json.dumps(notebook(tmp_path / "map")), encoding="utf-8")
    lab = JupyterLab(tmp_path)
    kernel_pid = None
    try:
        page, seen = offline_page(f"{lab.base}/lab/tree/widget.ipynb?token={lab.token}", viewport=VIEWPORT)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.content", timeout=30_000)
        kernel_pid = int(run_cell(page, 0).split()[0])
        page.wait_for_selector(".embedlens-widget[data-drawn='1']", timeout=30_000)
        page.evaluate("() => document.querySelector('.ew-map').scrollIntoView({block: 'center'})")
        page.click(".ew-tool-lasso")
        t = transform(page)
        xy = screen(result, t)
        poly = draw_star(page, t, (30.0, 0.0), 5 * t["scale"], 12 * t["scale"])  # around group 0
        expected = np.flatnonzero(Polygon(poly).contains_points(xy))
        assert 20 < expected.size < len(result) - 20
        page.wait_for_function("(k) => document.querySelector('.embedlens-widget').dataset.selected === String(k)",
                               arg=int(expected.size), timeout=15_000)
        back = json.loads(run_cell(page, 1))
        assert back["selected"] == result.ids[expected].tolist() and back["heard"] == back["selected"]
        assert page.text_content(".ew-count") == f"{expected.size:,} selected"

        # the kernel selects: the page rings exactly those rows (hostile tokens and a few others)
        rows = sorted([result.display.index(tok) for tok in HOSTILE] + [5, 700])
        page.evaluate("""(ids) => { const nb = window.jupyterapp.shell.currentWidget.content;
            const cell = nb.widgets[2]; cell.model.sharedModel.setSource('w.selected = ' + JSON.stringify(ids) +
            '\\nprint(json.dumps(w.selected_tokens))'); }""", result.ids[rows[::-1]].tolist())
        assert json.loads(run_cell(page, 2)) == [result.display[r] for r in rows]
        page.wait_for_function("(rows) => JSON.stringify(Array.from(document.querySelector('.ew-map').embedlensMap"
                               ".selected())) === JSON.stringify(rows)", arg=rows, timeout=15_000)
        assert page.get_attribute(".embedlens-widget", "data-selected") == str(len(rows))

        # hover reads every hostile token exactly as its readable form
        page.click(".ew-tool-pan")
        t = transform(page)
        xy = screen(result, t)
        for token in HOSTILE:
            row = result.display.index(token)
            page.mouse.move(t["left"] + 3, t["top"] + 3)
            page.mouse.move(*xy[row])
            page.wait_for_function("(t) => (document.querySelector('.ew-map .em-tip-main') || {}).textContent === t",
                                   arg=token, timeout=5_000)
            assert page.evaluate("() => document.querySelector('.ew-map .em-tip-main').children.length") == 0
            lines = page.eval_on_selector_all(".ew-map .em-tip-line", "els => els.map(e => e.textContent)")
            assert lines[:2] == [f"id {result.ids[row]}", "frequency 10,000"]
        page.screenshot(path=str(tmp_path / "lab.png"))
        assert not seen.dialogs and not seen.errors, (seen.dialogs, seen.errors)
        assert all(u.startswith((lab.base + "/", "data:", "blob:")) for u in seen.requests), \
            [u for u in seen.requests if not u.startswith(lab.base)]
    finally:
        lab.stop()
    assert lab.proc.returncode is not None
    if kernel_pid is not None:  # the kernel went with the server
        for _ in range(50):
            try:
                os.kill(kernel_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(kernel_pid, signal.SIGKILL)
            pytest.fail("the kernel outlived JupyterLab's shutdown")
