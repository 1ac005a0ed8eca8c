"""`slmlab profiles`: the hardware profiles local models can be served on, and adding one for a machine whose
batched service curves were imported (`slmlab bench import FILE --model K --machine M`)."""

from __future__ import annotations

import argparse
import json

from app.cli.common import Command
from simulators.deployment import PROFILES_FILE, DeploymentError, HardwareProfile, load_profiles, profile_from_entry
from slmlab.hardware_profiles import remove_profile, save_profile, stored_profiles
from slmlab.paths import resolve_db_path
from slmlab.service_curves import list_service_curves


def _rows(db: str | None) -> list[tuple[HardwareProfile, str, list[str]]]:
    """Every profile with where it is defined and the models with a usable curve on its machine."""
    stored = stored_profiles(db)
    curves = [c for c in list_service_curves(db=db) if not c["contended"]]
    rows = []
    for name, prof in load_profiles(stored=stored).items():
        on_machine = [
            c for c in curves if (c["machine"] == prof.machine if prof.machine else c["source"] != "imported")
        ]
        defined_in = "stored (slmlab profiles add)" if name in stored else PROFILES_FILE.name
        rows.append((prof, defined_in, sorted({str(c["model"]) for c in on_machine})))
    return rows


def cmd_profiles(args: argparse.Namespace) -> int:
    """List, add or remove hardware profiles."""
    if args.action == "add":
        if not args.name:
            raise ValueError("slmlab profiles add needs a NAME")
        if args.name in load_profiles():
            raise ValueError(f"'{args.name}' is a shipped profile ({PROFILES_FILE.name}); choose another name")
        entry = {
            "description": args.description or f"machine '{args.machine}' (curves imported with slmlab bench import)",
            "machine": args.machine,
            "memory_bytes": args.memory_gb * 2**30,
            "slots": args.slots,
            "capex_usd": args.capex_usd,
            "lifetime_months": args.lifetime_months,
            "watts_busy": args.watts_busy,
            "watts_idle": args.watts_idle,
            "ops_usd_per_month": args.ops_usd_per_month,
            "tariff_usd_per_kwh": args.tariff_usd_per_kwh,
            "source": args.source or "assumptions entered with slmlab profiles add",
        }
        if not args.machine:
            raise ValueError("slmlab profiles add needs --machine: the machine name its curves were imported under")
        try:
            profile_from_entry(args.name, entry, "slmlab profiles add")
        except DeploymentError as error:
            raise ValueError(str(error)) from None
        save_profile(args.name, entry, db=args.db, replace=args.replace)
        print(f"stored hardware profile '{args.name}' (machine '{args.machine}') in {resolve_db_path(args.db)}")
        return 0
    if args.action == "remove":
        remove_profile(args.name or "", db=args.db)
        print(f"removed hardware profile '{args.name}'")
        return 0
    rows = _rows(args.db)
    if args.json:
        found = [
            {**p.as_dict(), "defined_in": d, "usd_per_server_hour": p.hourly_usd(), "models_with_curves": m}
            for p, d, m in rows
        ]
        print(json.dumps(found, indent=2))
        return 0
    for prof, defined_in, models in rows:
        print(
            f"{prof.name}: {prof.description}\n"
            f"  machine {prof.machine or 'this one (curves measured here)'}; {prof.slots} slots, "
            f"{prof.memory_bytes / 2**30:,.0f} GiB; ${prof.hourly_usd():,.3f} per server-hour + energy at "
            f"{prof.watts_busy:,.0f} W busy; defined in {defined_in}\n"
            f"  batched service curves: {', '.join(models) or 'none (single-sequence speeds x assumed batch speed-up)'}"
        )
    return 0


def add_parser(command: Command) -> None:
    """Register this file's subcommand."""
    p = command("profiles", help="hardware profiles local models are served on (list, add one, remove one)")
    p.add_argument("action", nargs="?", choices=["list", "add", "remove"], default="list")
    p.add_argument("name", nargs="?", help="add/remove: the profile's name (used with slmlab simulate --hardware)")
    p.add_argument("--machine", help="add: the machine name its curves were imported under (slmlab bench import)")
    p.add_argument("--description", help="add: what the machine is")
    p.add_argument("--memory-gb", type=float, default=80.0, help="add: accelerator or RAM memory, GiB (default 80)")
    p.add_argument("--slots", type=int, default=64, help="add: sequences one server runs at once (default 64)")
    p.add_argument("--capex-usd", type=float, default=0.0, help="add: purchase price of one server (default 0)")
    p.add_argument("--lifetime-months", type=float, default=36.0, help="add: amortisation period (default 36)")
    p.add_argument("--watts-busy", type=float, default=0.0, help="add: power while serving (default 0)")
    p.add_argument("--watts-idle", type=float, default=0.0, help="add: power while idle (default 0)")
    p.add_argument(
        "--ops-usd-per-month", type=float, default=0.0, help="add: rent, hosting and operations per server-month"
    )
    p.add_argument("--tariff-usd-per-kwh", type=float, default=0.2, help="add: electricity price (default 0.2)")
    p.add_argument("--source", help="add: where these figures come from (a quote, a datasheet)")
    p.add_argument("--replace", action="store_true", help="add: overwrite a stored profile of the same name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_profiles)
