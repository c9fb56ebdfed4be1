"""Command line of the engine: ``python -m quality <verb> ...``.

Each group of verbs lives in its own module with a ``register(subparsers)`` function that
adds its sub-commands and sets ``func`` (a callable taking the parsed args and returning
an exit code). Bad input raises :class:`EngineInputError`, printed here as one line on
stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from quality.engine.errors import EngineInputError

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    from quality.engine import cli_coco, cli_reports

    parser = argparse.ArgumentParser(prog="python -m quality", description="Mask quality engine")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_coco.register(sub)
    cli_reports.register(sub)
    return parser


def main(argv: list[str] | None = None, *, process: bool = False) -> int:
    """Run one verb; with ``process`` (``python -m quality``), a verb that says so ends the
    process as soon as its output is flushed (see :func:`_end_now`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        if process and getattr(args, "end_process", False):
            _end_now(code)
        return code
    except EngineInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FileNotFoundError as exc:
        print(f"error: file_not_found: {exc.filename}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _end_now(code: int) -> None:
    """Exit without the interpreter's shutdown: an evaluation leaves nothing to finalize
    (its files are closed, its output is flushed here), and tearing down numpy's modules and
    every array (a full collection and a free of each object) costs a cold run a few percent."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
