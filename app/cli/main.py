"""`slmlab` subcommands: thin wrappers over library calls, human output by default and `--json` for scripts."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from app.cli import admin
from app.cli.common import EXIT_BAD_INPUT, EXIT_DATABASE
from slmlab.allocator import keep_freed_memory
from slmlab.paths import DB_ENV_VAR

# each file registers its own subcommands; imported when the parser is built (their registries load DuckDB)
SUBCOMMANDS = (
    "traces",
    "recorded",
    "models",
    "bench",
    "profiles",
    "eval",
    "simulate",
    "project",
    "validate",
    "admin",
)


def build_parser(only: Sequence[str] = SUBCOMMANDS) -> argparse.ArgumentParser:
    """The command line, assembled from each subcommand file's `add_parser` (`only`: just these files)."""
    db_help = f"DuckDB file (default: ${DB_ENV_VAR} or results/slmlab.duckdb)"
    parser = argparse.ArgumentParser(prog="slmlab", description=__doc__)
    parser.add_argument("--db", help=db_help)
    common = argparse.ArgumentParser(add_help=False)  # so `--db` also works after the subcommand
    common.add_argument("--db", help=db_help, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common])

    for name in only:
        importlib.import_module(f"app.cli.{name}").add_parser(command)
    return parser


def _first_positional(argv: Sequence[str]) -> str | None:
    """The subcommand a command line names (skipping `--db FILE` before it), without parsing it."""
    tokens = iter(argv)
    for token in tokens:
        if token == "--db":
            next(tokens, None)
        elif not token.startswith("-"):
            return token
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `slmlab` console script; exit 2 on bad input, 3 when the database cannot be opened."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # `slmlab dashboard` starts serving at once: only its own file's parser is built (no DuckDB, numpy, polars)
    fast = _first_positional(argv) in admin.COMMANDS
    args = build_parser(("admin",) if fast else SUBCOMMANDS).parse_args(argv)
    keep_freed_memory()  # process-wide, so set here at the entry point: imports and replays reuse freed blocks
    if args.command == "dashboard":  # start serving at once: the libraries below load while the browser connects
        return int(args.run(args))
    from slmlab import store
    from slmlab.isolation import WorkerFailed
    from slmlab.models import ModelError
    from slmlab.traces.errors import TraceInputError

    try:
        return args.run(args)
    except TraceInputError as error:
        return _failed(args, error, EXIT_BAD_INPUT, error.as_dict())
    except (ValueError, ModelError, WorkerFailed) as error:
        return _failed(args, error, EXIT_BAD_INPUT)
    except store.DatabaseUnavailable as error:
        return _failed(args, error, EXIT_DATABASE)


def _failed(args: argparse.Namespace, error: Exception, code: int, detail: dict | None = None) -> int:
    """Say what went wrong on stderr; with `--json` also as a JSON object on stdout, where a script reads."""
    if getattr(args, "json", False):
        body = {"message": str(error), "kind": type(error).__name__, "exit_code": code, **(detail or {})}
        print(json.dumps({"error": body}, indent=2, default=str))
    print(f"error: {error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
