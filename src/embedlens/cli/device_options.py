"""``--device`` and ``--dtype``: where and in what precision the network runs (grid, context, serve, logit lens)."""

from __future__ import annotations

import click

DEVICE_HELP = "Where the network runs: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps."
DTYPE_HELP = ("Precision of the network: float32, bfloat16, float16, or auto (the checkpoint's dtype on a GPU; on a "
              "CPU float32, or bfloat16 where this CPU has fast bfloat16 units).")


def device_options(f):
    """Add ``--device`` and ``--dtype`` (passed as ``device`` and ``dtype``; checked when the network is needed)."""
    f = click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default="float32",
                     show_default=True, help=DTYPE_HELP)(f)
    f = click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda|cuda:N|mps",
                     help=DEVICE_HELP)(f)
    return f
