"""`slmlab db` and `dashboard`: the database's state and the Streamlit server."""

from __future__ import annotations

import argparse
import json
import os
import sys

from app.cli.common import Command
from slmlab.paths import DB_ENV_VAR, NO_DEFAULTS_ENV_VAR, PROJECT_ROOT, resolve_db_path

COMMANDS = ("db", "dashboard")  # what add_parser registers; `slmlab dashboard` builds only this file's parser


def cmd_db(args: argparse.Namespace) -> int:
    path = resolve_db_path(args.db)
    from slmlab import store

    with store.connect(path, read_only=True) as con:
        info = {
            "path": str(path.resolve()),
            "migrations": [
                r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY applied_at, name").fetchall()
            ],
            "rows": {
                t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in (
                    "traces",
                    "requests",
                    "outcomes",
                    "bench_runs",
                    "eval_runs",
                    "sim_runs",
                    "sim_requests",
                    "sim_points",
                    "scenarios",
                )
            },
        }
    print(json.dumps(info, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items()))
    return 0


def dashboard_command(args: argparse.Namespace) -> list[str]:
    """The Streamlit command line: bound to the chosen address, no usage statistics, uploads capped."""
    return [
        "run",
        str(PROJECT_ROOT / "app" / "main.py"),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--browser.gatherUsageStats",
        "false",
        "--server.headless",
        "true",
        "--server.maxUploadSize",
        str(args.max_upload_mb),
        "--server.fileWatcherType",
        "none",  # no hot reload to watch for: starts faster
        "--client.toolbarMode",
        "minimal",  # no "Deploy" button: traces can be confidential
    ]


def cmd_dashboard(args: argparse.Namespace) -> int:
    db = resolve_db_path(args.db).resolve()
    # the app imports the embedded default workload itself on its first page (once per process)
    os.environ.update({DB_ENV_VAR: str(db), **({NO_DEFAULTS_ENV_VAR: "1"} if args.no_defaults else {})})
    print(
        f"slmlab dashboard on http://{args.host}:{args.port}  (database {db}, uploads up to {args.max_upload_mb} MB)",
        file=sys.stderr,
    )
    from streamlit.web import cli as streamlit_cli

    from app.warmup import warm_when_serving

    warm_when_serving(args.host, args.port, defaults=not args.no_defaults)  # while the browser loads Streamlit
    # Streamlit runs in this process (one process to stop, none orphaned, no second interpreter start-up)
    streamlit_cli.main(args=dashboard_command(args), prog_name="streamlit")
    return 0


def add_parser(command: Command) -> None:
    """Register this file's subcommands."""
    p = command("db", help="show the database path, applied migrations and row counts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_db)

    p = command("dashboard", help="launch the Streamlit dashboard (binds to 127.0.0.1 by default)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: traces can be confidential)"
    )
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--no-defaults", action="store_true", help="do not import the embedded default workload first")
    p.add_argument(
        "--max-upload-mb",
        type=int,
        default=200,
        help="largest file the dashboard accepts for upload, in MB (default 200); import bigger files "
        "with `slmlab import`",
    )
    p.set_defaults(run=cmd_dashboard)
