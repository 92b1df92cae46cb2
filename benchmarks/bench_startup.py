"""Command start-up: how long small jobs take end to end, and which imports they pay for.

    EMBEDLENS_CACHE=/tmp/elcache flock /tmp/embedlens-bench.lock .venv/bin/python benchmarks/bench_startup.py

Each command is a fresh process (``python -c "from embedlens.cli import entry; entry()" ARGS``), run
``--repeats`` times (default 5) after one warm-up; the median wall time is printed beside the floor in the
same run: ``python -c pass`` and ``python -c "import numpy, click, rich"`` (what every working command
needs). Then one ``python -X importtime`` run per command lists its slowest top-level imports, and whether it
imported any of the heavy libraries (torch, transformers, plotly, matplotlib, igraph, sklearn, scipy).

Targets (issue 26): every ``--help`` <= 0.3 s; ``neighbors king`` warm <= 0.25 s; SmolLM2 ``grid --grid-size 50``
warm <= 4 s (``--grid`` to include it: it runs the model). The cache (``EMBEDLENS_CACHE``) must already hold
SmolLM2 (a first ``neighbors king`` extracts it and builds the one-token index).

Baselines in the same run: ``neighbors king`` the previous way (the query encoded by the tokenizer loaded from
``tokenizer.json``, the table printed by rich), by the same code with the one-token index and the plain table
turned off; for the grid, the previous route (the same code with the meta model initialised, one decode per
batch, uncached versions and no ``gc.freeze()`` at exit: ``PREVIOUS_GRID``) run in turns with it, each run's stages from its manifest (their
medians), and the floor it cannot go
under while it runs transformers' model classes (``import torch``, then with
``transformers.models.llama.modeling_llama``, matplotlib and plotly).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine  # noqa: E402

HEAVY = ("torch", "transformers", "plotly", "matplotlib", "igraph", "sklearn", "scipy")
CLI = "import sys; from embedlens.cli import entry; sys.argv[0] = 'embedlens'; entry()"
# The same command the previous way: the tokenizer encodes the query, rich prints the table.
PREVIOUS = (
    "import sys\n"
    "from embedlens.cli import entry, table\n"
    "from embedlens.lens import ModelLens\n"
    "ModelLens._tokenizer_digest = None  # no one-token index: the tokenizer encodes every query\n"
    "table._styled = lambda: None  # every table through rich\n"
    "sys.argv[0] = 'embedlens'; entry()\n"
)
GRID_FLOOR = ("import torch, transformers.models.llama.modeling_llama, matplotlib; matplotlib.use('Agg'); "
              "import matplotlib.pyplot, plotly.graph_objects")
# The grid the previous way: the meta model built with transformers' weight initialisation (run on meta
# tensors), the head decoding one 100-cell batch at a time, the package versions read at every call, and the
# interpreter's shutdown collecting every object the command made.
PREVIOUS_GRID = (
    "import sys\n"
    "from embedlens import versions\n"
    "from embedlens.cli import main\n"
    "from embedlens.grid import predict\n"
    "from embedlens.models import partial\n"
    "def meta_model(config, dtype):\n"
    "    from accelerate import init_empty_weights\n"
    "    with init_empty_weights(include_buffers=False), partial._quiet():\n"
    "        return partial._model_class(config).from_config(config, dtype=dtype)\n"
    "partial.meta_model = meta_model\n"
    "predict.DECODE_BYTES = 0  # decode_rows() = one batch\n"
    "versions._versions = versions._versions.__wrapped__\n"
    "sys.argv[0] = 'embedlens'; sys.exit(main())  # no gc.freeze() before the interpreter shuts down\n"
)


def commands() -> list[str]:
    from embedlens.cli import COMMANDS

    return sorted(COMMANDS)


# Byte-code files written, as an installed package has them (some shells set PYTHONDONTWRITEBYTECODE, which
# would make every run compile the package again and count it).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


CPU: dict[int, list[float]] = {}  # id of a wall() result -> the CPU seconds (user + system) of each run


def wall(args: list[str], repeats: int, *, warm_up: bool = True) -> list[float]:
    """Wall seconds of each run; the runs' CPU seconds go to ``CPU`` (on a loaded machine the wall time swings
    with the other processes, the CPU time much less)."""
    if warm_up:
        subprocess.run(args, capture_output=True, check=False, env=ENV)  # page cache, .pyc files
    out, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        res = subprocess.run(args, capture_output=True, check=False, env=ENV)
        out.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if res.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{res.stderr.decode()[-2000:]}")
    CPU[id(out)] = cpu
    return out


def imports(args: list[str]) -> tuple[list[tuple[str, float]], list[str]]:
    """The slowest top-level imports (name, ms) of one run, and the heavy libraries it imported."""
    res = subprocess.run([sys.executable, "-X", "importtime", *args[1:]], capture_output=True, text=True, check=False,
                         env=ENV)
    top, heavy = [], set()
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if not cumulative.strip().isdigit():
            continue
        root = name.strip().split(".")[0]
        if root in HEAVY:
            heavy.add(root)
        if name.startswith(" ") and not name.startswith("  "):  # depth 0: one space after the bar
            top.append((name.strip(), int(cumulative) / 1000))
    return sorted(top, key=lambda t: -t[1])[:6], sorted(heavy)


def show(label: str, runs: list[float], target: float | None = None) -> None:
    med = statistics.median(runs)
    aim = f"  (target <= {target:g} s)" if target else ""
    cpu = CPU.get(id(runs))
    used = f", cpu {statistics.median(cpu):.3f} s" if cpu else ""
    print(f"  {label:44s} {med:6.3f} s median of {len(runs)}{used}{aim}  [{', '.join(f'{r:.3f}' for r in runs)}]"
          f"  load {load()}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--grid", action="store_true", help="also SmolLM2 `grid --grid-size 50` warm (runs the model)")
    ap.add_argument("--no-help", action="store_true", help="skip the --help of every command")
    args = ap.parse_args()
    print(machine(), flush=True)
    py = sys.executable
    print("floor (same run):", flush=True)
    show("python -c pass", wall([py, "-c", "pass"], args.repeats))
    show("python -c 'import numpy, click, rich'", wall([py, "-c", "import numpy, click, rich"], args.repeats))
    jobs: list[tuple[str, list[str], float]] = [("embedlens --help", ["--help"], 0.3)]
    jobs += [] if args.no_help else [(f"embedlens {c} --help", [c, "--help"], 0.3) for c in commands()]
    jobs.append(("embedlens neighbors king (warm)", ["neighbors", "king"], 0.25))
    out = tempfile.mkdtemp(prefix="bench-startup-")
    print(f"commands (load {load()}):", flush=True)
    for label, argv, target in jobs:
        cmd = [py, "-c", CLI, *argv]
        show(label, wall(cmd, args.repeats), target)
        print_imports(cmd)
        if argv[:2] == ["neighbors", "king"]:
            show("  baseline: the previous route (tokenizer.json, rich)", wall([py, "-c", PREVIOUS, *argv], args.repeats))
    if args.grid:
        grid(py, ["grid", "--grid-size", "50", "--output-dir", out], max(3, args.repeats))
    print(machine(), flush=True)


def print_imports(cmd: list[str]) -> None:
    top, heavy = imports(cmd)
    print(f"      heavy imports: {', '.join(heavy) or 'none'}; slowest top-level: "
          + ", ".join(f"{n} {ms:.0f} ms" for n, ms in top), flush=True)


def grid(py: str, argv: list[str], repeats: int) -> None:
    """SmolLM2 ``grid --grid-size 50`` warm and the previous route, run in turns (a load that drifts hits both
    alike), each with the medians of its runs' own stages (their manifests); then the import floor."""
    import json

    routes = {"embedlens grid --grid-size 50 (warm)": CLI, "  baseline: the previous route": PREVIOUS_GRID}
    runs: dict[str, list[float]] = {label: [] for label in routes}
    cpu: dict[str, list[float]] = {label: [] for label in routes}
    stages: dict[str, list[dict]] = {label: [] for label in routes}
    for code in routes.values():  # warm-up: page cache, .pyc files
        subprocess.run([py, "-c", code, *argv], capture_output=True, check=False, env=ENV)
    for _ in range(repeats):
        for label, code in routes.items():
            one = wall([py, "-c", code, *argv], 1, warm_up=False)
            runs[label] += one
            cpu[label] += CPU.pop(id(one))
            stages[label].append(json.loads((Path(argv[-1]) / "manifest.json").read_text())["timings"])
    for label in routes:
        CPU[id(runs[label])] = cpu[label]
        show(label, runs[label], 4.0 if "baseline" not in label else None)
        t = stages[label]
        med = {k: statistics.median(r[k] for r in t) for k in ("load_s", "render_s", "total_s")}
        predict = statistics.median(sum(v["predict_s"] for v in r["per_layer"].values()) for r in t)
        print(f"      its stages (medians): load {med['load_s']:.2f} s, predict {predict:.2f} s, render "
              f"{med['render_s']:.2f} s, total inside the library {med['total_s']:.2f} s", flush=True)
        if "baseline" not in label:
            print_imports([py, "-c", CLI, *argv])
    show("  floor: import torch", wall([py, "-c", "import torch"], 3))
    show("  floor: import torch, transformers' Llama, matplotlib, plotly", wall([py, "-c", GRID_FLOOR], 3))


def load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
