"""User-facing errors.

Every problem a user can cause or fix (a bad argument, a missing file, an unknown model) is raised as
:class:`EmbedlensError` with a one-line message that says what is wrong and what to do. The CLI prints
that line and exits with code 2; anything else is a bug and is reported as such.
"""

from __future__ import annotations


class EmbedlensError(Exception):
    """A problem the user can fix; ``str(err)`` is a single line meant for them."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        text = " ".join(message.split())
        if hint:
            text = f"{text} ({' '.join(hint.split())})"
        super().__init__(text)


class MissingDependency(EmbedlensError):
    """An optional feature needs a package that is not installed."""

    def __init__(self, package: str, feature: str, extra: str | None = None) -> None:
        fix = f"pip install 'embedlens[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the '{package}' package, which is not installed: run {fix}")


def require(module: str, feature: str, extra: str | None = None, package: str | None = None):
    """Import an optional module, or raise a :class:`MissingDependency` saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependency(package or module, feature, extra) from exc
