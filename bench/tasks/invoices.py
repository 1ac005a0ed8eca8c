"""Invoice field extraction on synthetic documents: a seeded generator writes each invoice and its gold fields.

SYNTHETIC: no real invoices ship with slmlab. The generator varies vendor, layout, date format, currency style
and line items so the task is not a single template, and the same seed always writes the same documents.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass
from typing import Any

from bench.tasks.base import Example, Grade, Task, parse_json_object

SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string", "maxLength": 60},
        "date": {"type": "string", "format": "date"},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP", "CHF"]},
        "total": {"type": "number"},
        "line_items": {
            "type": "array",
            "maxItems": 6,
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string", "maxLength": 60},
                    "quantity": {"type": "integer"},
                    "unit_price": {"type": "number"},
                },
                "required": ["description", "quantity", "unit_price"],
            },
        },
    },
    "required": ["vendor", "date", "currency", "total", "line_items"],
}
FIELDS = ("vendor", "date", "currency", "total", "line_items")

_VENDORS = (
    "Nordlicht Logistik GmbH",
    "Acme Office Supplies Ltd",
    "Bellweather Consulting LLC",
    "Café Central SARL",
    "Rheintal Maschinenbau AG",
    "Blue Harbor Software Inc.",
    "Kowalski & Syn Sp. z o.o.",
    "Vetro Bianco S.r.l.",
    "Greenfield Catering Ltd",
    "Stellar Print Works",
    "Helvetia Datentechnik AG",
    "Oakridge Facility Services",
)
_ITEMS = (
    ("Printer paper A4, box", 24, 40),
    ("Laptop docking station", 80, 260),
    ("Consulting hours", 90, 180),
    ("Toner cartridge black", 35, 95),
    ("Cloud storage, monthly", 9, 60),
    ("Office chair", 120, 450),
    ("On-site support visit", 150, 400),
    ("Catering, lunch for 12", 180, 320),
    ("USB-C cable 2 m", 8, 25),
    ("Software licence, annual", 200, 1500),
    ("Freight, pallet", 60, 240),
    ("Cleaning service", 90, 300),
)
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF "}
_SIZES = {"test": 300, "train": 300}
_SEEDS = {"test": 20261127, "train": 7}


def _money(amount: float, currency: str, style: int) -> str:
    if style == 0:
        return f"{_SYMBOLS[currency]}{amount:,.2f}"
    if style == 1:
        return f"{amount:,.2f} {currency}"
    return f"{currency} {amount:.2f}".replace(".", ",") if currency in ("EUR", "CHF") else f"{currency} {amount:.2f}"


def _date(day: dt.date, style: int) -> str:
    return (day.isoformat(), day.strftime("%d %B %Y"), day.strftime("%d.%m.%Y"), day.strftime("%B %d, %Y"))[style]


def generate(rng: random.Random) -> tuple[str, dict[str, object]]:
    """One invoice document and its gold fields."""
    vendor = rng.choice(_VENDORS)
    currency = rng.choice(("EUR", "USD", "GBP", "CHF"))
    day = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(700))
    items: list[dict[str, Any]] = []
    for description, low, high in rng.sample(_ITEMS, rng.randint(1, 4)):
        items.append(
            {"description": description, "quantity": rng.randint(1, 12), "unit_price": round(rng.uniform(low, high), 2)}
        )
    total = round(sum(i["quantity"] * i["unit_price"] for i in items), 2)
    money_style, date_style, layout = rng.randrange(3), rng.randrange(4), rng.randrange(3)
    number = f"INV-{rng.randint(1000, 99999)}"
    lines = [
        f"{i['description']} | qty {i['quantity']} | {_money(i['unit_price'], currency, money_style)}" for i in items
    ]
    if layout == 0:
        text = "\n".join(
            [
                vendor,
                f"Invoice {number}",
                f"Date: {_date(day, date_style)}",
                "",
                "Item | Qty | Unit price",
                *lines,
                "",
                f"Total due: {_money(total, currency, money_style)}",
            ]
        )
    elif layout == 1:
        text = (
            f"From: {vendor}\nSubject: invoice {number} dated {_date(day, date_style)}\n\nPlease find our charges "
            "below.\n"
            + "\n".join(f"- {line}" for line in lines)
            + f"\nAmount payable: {_money(total, currency, money_style)}\nPayment within 30 days."
        )
    else:
        text = "\n".join(
            [
                f"INVOICE {number}",
                f"Issued {_date(day, date_style)} by {vendor}",
                *lines,
                f"TOTAL {_money(total, currency, money_style)}",
            ]
        )
    gold = {"vendor": vendor, "date": day.isoformat(), "currency": currency, "total": total, "line_items": items}
    return text, gold


def _close(a: object, b: float) -> bool:
    return isinstance(a, (int, float)) and not isinstance(a, bool) and abs(float(a) - float(b)) < 0.005


def _same_items(predicted: object, gold: list[dict]) -> bool:
    if not isinstance(predicted, list) or len(predicted) != len(gold):
        return False
    return all(
        isinstance(p, dict)
        and str(p.get("description", "")).strip().lower() == g["description"].lower()
        and p.get("quantity") == g["quantity"]
        and _close(p.get("unit_price"), g["unit_price"])
        for p, g in zip(predicted, gold)
    )


def valid_against_schema(value: dict) -> bool:
    """The answer has every required field with the schema's type (the checks the scorer relies on)."""
    return (
        isinstance(value.get("vendor"), str)
        and isinstance(value.get("date"), str)
        and value.get("currency") in ("EUR", "USD", "GBP", "CHF")
        and isinstance(value.get("total"), (int, float))
        and not isinstance(value.get("total"), bool)
        and isinstance(value.get("line_items"), list)
    )


@dataclass(frozen=True)
class Invoices(Task):
    """Extract vendor, ISO date, currency code, total and line items as JSON matching SCHEMA."""

    def json_schema(self) -> dict[str, object] | None:
        return SCHEMA

    def splits(self) -> tuple[str, ...]:
        return ("test", "train")

    def examples(self, split: str) -> list[Example]:
        if split not in _SIZES:
            raise ValueError(f"invoices has the splits test and train, not '{split}'")
        rng = random.Random(_SEEDS[split])
        out = []
        for index in range(_SIZES[split]):
            text, gold = generate(rng)
            out.append(Example(f"{split}-{index + 1}", text, json.dumps(gold, separators=(",", ":")), index + 1))
        return out

    def user_message(self, text: str) -> str:
        return f"Document:\n{text}\nJSON:"

    def grade(self, answer: str, example: Example) -> Grade:
        """Per field right or wrong; the request is correct only when all five fields are."""
        gold = json.loads(example.reference)
        value = parse_json_object(answer)
        if value is None:
            return Grade(correct=False, score=0.0, valid=False, fields=dict.fromkeys(FIELDS, False))
        fields = {
            "vendor": str(value.get("vendor", "")).strip().lower() == gold["vendor"].lower(),
            "date": value.get("date") == gold["date"],
            "currency": value.get("currency") == gold["currency"],
            "total": _close(value.get("total"), gold["total"]),
            "line_items": _same_items(value.get("line_items"), gold["line_items"]),
        }
        right = sum(fields.values())
        return Grade(
            correct=right == len(FIELDS), score=right / len(FIELDS), valid=valid_against_schema(value), fields=fields
        )


def load() -> Invoices:
    """The synthetic invoice task (300 test and 300 training documents)."""
    return Invoices(
        name="invoices",
        kind="extraction",
        enterprise_task="document-extraction",
        description="SYNTHETIC: pull vendor, date, currency, total and line items out of generated invoices as JSON.",
        instructions=(
            "Extract the invoice's fields as one JSON object with the keys vendor, date (YYYY-MM-DD), "
            "currency (EUR, USD, GBP or CHF), total (a number) and line_items (a list of objects with "
            "description, quantity and unit_price). Reply with the JSON only."
        ),
        source="slmlab seeded generator bench/tasks/invoices.py (synthetic)",
        licence="generated (no third-party data)",
        synthetic=True,
    )
