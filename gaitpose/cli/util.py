"""Shared command-line helpers: one-line errors and non-zero exits for bad input."""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import typer

from gaitpose.errors import GaitposeError

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (GaitposeError, FileNotFoundError, ValueError, PermissionError)


@contextlib.contextmanager
def cli_errors(exit_code: int = 2) -> Iterator[None]:
    """Turn expected failures into ``error: <file>: <reason>`` on stderr and a non-zero exit.

    Unexpected exceptions keep their traceback: they are bugs, not bad input.
    """
    try:
        yield
    except EXPECTED_ERRORS as exc:
        msg = str(exc).replace("\n", " ").strip() or exc.__class__.__name__
        print(f"error: {msg}", file=sys.stderr)
        raise typer.Exit(exit_code) from None


def make_app(
    name: str, help_text: str, command_modules: Sequence[str], plugin_group: str | None = None
) -> typer.Typer:
    """A typer app whose sub-commands live in ``command_modules`` (and, optionally, entry-point plug-ins).

    Each module in ``command_modules`` exposes ``register(app)`` and imports heavy dependencies
    (torch, onnx) inside its command bodies, so e.g. ``gaitpose analyze`` runs without torch.
    A module that is absent from this build (its package not shipped) is skipped.
    ``plugin_group``: entry points (``name = "package.module:register"``) that add commands from
    other packages; they are looked up only when such a command is asked for or the help is
    shown, so a built-in command pays nothing for them.
    """
    cls = _plugin_group_class(plugin_group) if plugin_group else None
    app = typer.Typer(
        name=name, help=help_text, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
        **({"cls": cls} if cls else {}),
    )

    @app.callback()
    def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
        )

    top = command_modules[0].split(".")[0] if command_modules else ""
    for module_name in command_modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(top):
                continue
            raise
        module.register(app)
    return app


def _plugin_group_class(group: str) -> type:
    """A click group class that adds the commands registered under entry-point ``group``."""
    from typer.core import TyperGroup

    class PluginGroup(TyperGroup):
        _found: dict[str, Any] | None = None

        def _plugins(self) -> dict[str, Any]:
            if PluginGroup._found is None:
                from importlib.metadata import entry_points  # only now: scanning the installed packages costs

                PluginGroup._found = {ep.name: ep for ep in entry_points(group=group)}
            return PluginGroup._found

        def list_commands(self, ctx: Any) -> list[str]:
            own = list(super().list_commands(ctx))
            return own + sorted(n for n in self._plugins() if n not in own)

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            cmd = super().get_command(ctx, cmd_name)
            if cmd is not None or cmd_name not in self._plugins():
                return cmd
            try:
                register = self._plugins()[cmd_name].load()
            except ImportError:  # the plug-in's package is not installed here
                return None
            sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
            register(sub)
            return typer.main.get_group(sub).get_command(ctx, cmd_name)

    return PluginGroup


class ProgressLine:
    """One self-updating progress line on stderr for a long job, used as a context manager.

    Why a class and not a bare tqdm bar: the bar appears only at the first ``update`` (the job
    calls it once its inputs are checked and its models loaded), so a bad input prints just the
    ``error:`` line and never a stray 0 % bar; a failure removes the bar; informational log lines
    are held back while it runs (the job's warnings are printed once at the end by the command;
    ``--verbose`` keeps every log line); and without a terminal (a pipe, a service log) nothing
    is drawn at all.
    """

    def __init__(self, desc: str, stream: Any = None) -> None:
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self._bar: Any = None
        self._last = 0
        self._quiet: list[tuple[logging.Logger, int]] = []

    def __enter__(self) -> ProgressLine:
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            for name in ("gaitpose", "data_tools"):
                lg = logging.getLogger(name)
                self._quiet.append((lg, lg.level))
                lg.setLevel(logging.WARNING)
        return self

    def update(self, fraction: float) -> None:
        """Show ``fraction`` (0-1) of the job done."""
        n = int(1000 * min(max(float(fraction), 0.0), 1.0) + 0.5)
        if self._bar is None:
            if not getattr(self.stream, "isatty", lambda: False)():
                return
            import shutil

            from tqdm import tqdm

            width = min(100, shutil.get_terminal_size((80, 24)).columns)  # a 0-column pty falls back to 80
            # A plain writer object: given sys.stderr itself, tqdm drew nothing on some terminals (ptys).
            out = _Writer(self.stream)
            self._bar = tqdm(total=1000, desc=self.desc, file=out, leave=True, ncols=width,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        if n > self._last:
            self._bar.update(n - self._last)
            self._last = n

    def __exit__(self, exc_type: Any, *_exc: Any) -> None:
        if self._bar is not None:
            self._bar.leave = exc_type is None
            self._bar.close()
        for lg, level in self._quiet:
            lg.setLevel(level)


class _Writer:
    """write/flush of a text stream, nothing else."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.encoding = getattr(stream, "encoding", None)  # tqdm draws a unicode bar when it can

    def write(self, text: str) -> int:
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()
