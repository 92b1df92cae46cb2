"""Library messages name parameters; the command line names flags. :func:`flag_text` translates.

Library code (everything outside ``embedlens.cli``) writes a parameter in backticks, ```min_score```, or
with a suggested value, ```space=glove-50d```, so a Python caller reads the name they actually pass. When
such a message reaches the terminal (an :class:`~embedlens.errors.EmbedlensError` caught by ``main``, or
an ``embedlens: note:`` line), the user typed flags, not parameters: each backticked name becomes the
invoked command's option for that parameter (``--min-score``, ``--space glove-50d``). Only click is
imported here, so ``embedlens --help`` stays instant.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

import click

# `name` or `name=VALUE` (a Python identifier; anything else in backticks, e.g. a shell command, is left alone)
_PARAM = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)(?:=([^`\n]*))?`")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
# what the library quotes of the user's own input ('...'): never translated, even if it holds `k`
_QUOTED = re.compile(r"'[^'\n]*'")


def _long_opt(opts: Sequence[str]) -> str:
    """The option's main long spelling: its first ``--`` form (``--model``, not the alias ``--model-name``)."""
    return next((o for o in opts if o.startswith("--")), opts[0])


def _params_named(command: click.Command | None, name: str) -> list[click.Parameter]:
    """The command's parameters called ``name``; failing that, the option spelled ``--name`` (``random`` ->
    ``--random`` even when the click parameter is called ``random_n``)."""
    if command is None:
        return []
    found = [p for p in command.params if p.name == name]
    if not found:
        dashed = "--" + name.replace("_", "-")
        found = [p for p in command.params if isinstance(p, click.Option) and dashed in (*p.opts, *p.secondary_opts)]
    return found


def _argument_name(param: click.Parameter) -> str:
    return (param.metavar or "").strip("[].") or (param.name or "").upper()


def _option_text(params: list[click.Parameter], value: str | None) -> str:
    options = [p for p in params if isinstance(p, click.Option)]
    if not options:  # a click Argument: its metavar (QUERY), or the value itself
        return value if value is not None else _argument_name(params[0])
    aliases = [p for p in options if p.is_flag and not p.is_bool_flag]  # --exact / --approx both set `method`
    if value is None:
        return "/".join(_long_opt(p.opts) for p in aliases) if aliases == options else _long_opt(options[0].opts)
    for p in aliases:
        if str(p.flag_value) == value:
            return _long_opt(p.opts)
    if aliases == options:  # a value none of the flags sets
        return "/".join(_long_opt(p.opts) for p in aliases) + f" (not {value})"
    p = options[0]
    if p.is_bool_flag:
        if value.lower() in _TRUE:
            return _long_opt(p.opts)
        if value.lower() in _FALSE:
            return _long_opt(p.secondary_opts) if p.secondary_opts else f"without {_long_opt(p.opts)}"
    return f"{_long_opt(p.opts)} {shlex.quote(value)}"


def flag_text(message: str, command: click.Command | None) -> str:
    """``message`` with each ```name``` / ```name=VALUE``` replaced by ``command``'s option (``--opt`` /
    ``--opt VALUE``); a click Argument becomes its metavar. A name the command does not have stays as
    written (backticks and all: it may be a user's own text), and so is anything inside '...' (the library
    quotes the user's query that way). With ``command=None`` only the backticks go."""

    quoted = [q.span() for q in _QUOTED.finditer(message)]

    def swap(m: re.Match[str]) -> str:
        if any(a <= m.start() and m.end() <= b for a, b in quoted):
            return m.group(0)
        name, value = m.group(1), m.group(2)
        params = _params_named(command, name)
        if params:
            return _option_text(params, value)
        # not this command's parameter: left as written (it may be part of a user's own query or token)
        return m.group(0) if command is not None else (name if value is None else f"{name}={value}")

    return _PARAM.sub(swap, message)


def invoked_command(group: click.Group, argv: Sequence[str]) -> click.Command | None:
    """The subcommand of ``group`` that ``argv`` names (one level of nested groups, as in ``cache clear``),
    or ``None``. Never raises: a command that cannot even be imported just leaves the flags untranslated."""
    try:
        ctx = click.Context(group)
        words = [a for a in argv if not a.startswith("-")]
        command = group.get_command(ctx, words[0]) if words else None
        if isinstance(command, click.Group) and len(words) > 1:
            command = command.get_command(click.Context(command, parent=ctx), words[1]) or command
        return command
    except Exception:  # noqa: BLE001 - translation is best effort; the message still prints
        return None


def current_command() -> click.Command | None:
    """The command now running (innermost click context), or ``None`` outside one."""
    ctx = click.get_current_context(silent=True)
    return ctx.command if ctx is not None else None
