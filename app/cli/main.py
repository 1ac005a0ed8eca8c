"""`slmlab` subcommands: thin wrappers over library calls, human output by default and `--json` for scripts."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from app.cli import admin, bench, eval, models, project, recorded, simulate, traces
from app.cli.common import EXIT_BAD_INPUT, EXIT_DATABASE
from slmlab.allocator import keep_freed_memory
from slmlab.paths import DB_ENV_VAR

SUBCOMMANDS = (traces, recorded, models, bench, eval, simulate, project, admin)  # each registers its own subcommands


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, assembled from each subcommand file's `add_parser`."""
    db_help = f"DuckDB file (default: ${DB_ENV_VAR} or results/slmlab.duckdb)"
    parser = argparse.ArgumentParser(prog="slmlab", description=__doc__)
    parser.add_argument("--db", help=db_help)
    common = argparse.ArgumentParser(add_help=False)  # so `--db` also works after the subcommand
    common.add_argument("--db", help=db_help, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[common])

    for module in SUBCOMMANDS:
        module.add_parser(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `slmlab` console script; exit 2 on bad input, 3 when the database cannot be opened."""
    args = build_parser().parse_args(argv)
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
        if getattr(args, "json", False):
            print(json.dumps({"error": error.as_dict()}, indent=2), file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ModelError, WorkerFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except store.DatabaseUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DATABASE


if __name__ == "__main__":
    sys.exit(main())
