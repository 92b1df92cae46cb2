"""Versions of the packages that shape results, for every manifest (``versions()``).

Its own small module so that anything may record versions without importing the space extraction code.
"""

from __future__ import annotations

import functools
import platform

PACKAGES = ("embedlens", "numpy", "torch", "transformers", "tokenizers")


def versions() -> dict[str, str]:
    """Versions of the packages that shape results, for manifests."""
    return dict(_versions())


@functools.cache
def _versions() -> dict[str, str]:
    # read once per process: each metadata lookup scans sys.path (~35 ms for these five)
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def package_version(name: str) -> str:
    """The installed version of package ``name``, or ``"unknown"``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover - depends on the environment
        return "unknown"
