"""``--device`` and ``--dtype``: where and in what precision the network runs (grid, context, serve, logit lens);
``--max-memory``: how much of the device its weights may take (context, serve, logit lens)."""

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


MAX_MEMORY_HELP = ("At most this much memory for the model's weights on the device (2GB, 512MiB): the blocks that "
                   "do not fit are offloaded (to the disk on a CPU, to the CPU on a GPU) and read as they run. "
                   "Safetensors models only; default no limit.")


def max_memory_option(f):
    """Add ``--max-memory`` (passed as ``max_memory``; checked before any weight is read)."""
    return click.option("--max-memory", "max_memory", default=None, metavar="SIZE", help=MAX_MEMORY_HELP)(f)
