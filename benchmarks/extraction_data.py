"""Held-out extraction set for the extraction benchmark.

Same record kinds and JSON form as the training data of steerdiff-tiny (``steerdiff/train/data.py``),
but a different faker seed and sentence templates that are NOT used in training (the list below).

    heldout(n=200, seed=12345) -> [{"schema_name", "schema", "text", "expected"}, ...]
    schemas() -> {kind: JSON Schema}   # key order of "properties" = key order of the expected JSON

Optional fields the text does not mention are absent from ``expected`` (never null), as in training.
"""
from __future__ import annotations

import random
import re

from faker import Faker

from steerdiff.train.data import KINDS, make_record, ordered, schemas as _train_schemas, surface

__all__ = ["heldout", "schemas", "HELDOUT_TEMPLATES"]


def schemas() -> dict[str, dict]:
    """JSON Schema of each record kind (required/optional keys, types, enums, integer bounds)."""
    return _train_schemas()


# Placeholders are field names; role/in_stock/status/paid/online use the spelled-out forms below.
HELDOUT_TEMPLATES: dict[str, list[str]] = {
    "Person": [
        "Registered {role}: {name}, {age} yrs, contact {email}.",
        "Sign-up received from {name} (age {age}); permission level {role}.",
        "{name} is {age} years young and holds {role} permissions.",
        "Account request: {name}, {age}, wants {role} access, mail to {email}.",
        "According to the roster, {name}, aged {age}, has {role} access.",
        "{name} just joined with {role} permissions at the age of {age}.",
        "I am {name}, I am {age}, and my login is a {role} login.",
        "Grant {role} access to {name} ({age} years), reachable via {email}.",
    ],
    "Contact": [
        "Spoke with {name} today; {name_first} is {age} and calls {city} home.",
        "Business card: {name}, {job}, {company}.",
        "Please add {name} to the CRM - phone {phone}, mail {email}.",
        "{name} has been a {job} with {company} for years and lives near {city}.",
        "Lead: {name} out of {city}, best number {phone}.",
        "Got a note from {name} ({email}), who recently started at {company}.",
        "At {age}, {name} still commutes to {company} every day.",
        "Reference: {name}, currently a {job}, email {email}, tel {phone}.",
    ],
    "Address": [
        "Our warehouse sits at {street} in the city of {city}.",
        "Kindly forward all letters to {street}, {city}, {state} {zip}.",
        "The parcel was dropped off at {street}, {city}.",
        "Visit the showroom: {street}, {city} ({state}).",
        "New tenant at {street}, {city}, {country}.",
        "Headquarters relocated to {street}, {city}, {state} {zip}, {country}.",
        "Pick-up point is {street}, {zip} {city}.",
        "The house at {street} ({city}) is for sale.",
    ],
    "Product": [
        "Just restocked: {name}, only {price} a piece.",
        "Check out the {name} in our {category} aisle for {price}.",
        "Inventory shows {quantity} units of {name}, price {price}.",
        "The {name} will set you back {price} and it is {in_stock}.",
        "Special offer - {name}, now {price}, {quantity} left.",
        "Listing: {name} | {category} | {price} | {in_stock}",
        "A customer asked about the {name}; it costs {price}.",
        "We priced the {name} at {price} for the {category} catalog.",
    ],
    "Order": [
        "Invoice for order {order_id}: customer {customer}, issued {date}, amount due {total}.",
        "{customer} checked out on {date} (order {order_id}), and the order is {status}.",
        "Shipment update for {order_id} belonging to {customer}: {status} as of {date}.",
        "Receipt {order_id} - {customer} - {date} - {total} - {paid}.",
        "The purchase {order_id} by {customer} on {date} is {paid}.",
        "Customer {customer} asked about order {order_id} from {date}.",
        "Order {order_id} was booked {date} for {customer}; grand total {total}; currently {status}.",
        "Refund check: {customer}, order {order_id}, {date}, {total}.",
    ],
    "Event": [
        "Mark your calendar for the {title} on {date}.",
        "The {title} gets under way at {time} on {date} at {location}.",
        "Invitation: {title}, {date} from {time}, venue {location}, {online}.",
        "We are hosting the {title} on {date}; about {attendees} people will come.",
        "Heads-up: {title} moved to {date}, {time}.",
        "The {title} ({date}) will be {online} and capped at {attendees} participants.",
        "Come to {location} on {date} for the {title}.",
        "Agenda item: {title} - {date} @ {time}.",
    ],
}

_SPELL = {
    "in_stock": {True: "available", False: "unavailable"},
    "paid": {True: "settled", False: "outstanding"},
    "online": {True: "held virtually", False: "held on location"},
}


def _fill(kind: str, tpl: str, rec: dict, rng: random.Random) -> tuple[str, dict]:
    keys = [k for k in re.findall(r"\{(\w+)\}", tpl)]
    vals = {}
    fields = []
    for k in keys:
        if k == "name_first":
            vals[k] = rec["_first"]
            continue
        v = rec[k]
        vals[k] = _SPELL[k][v] if k in _SPELL else surface(kind, k, v, rng)
        fields.append(k)
    text = tpl.format(**vals)
    text = re.sub(r"\ba (?=[aeiouAEIOU])", "an ", text)
    return text, ordered(kind, rec, fields)


def heldout(n: int = 200, seed: int = 12345) -> list[dict]:
    """``n`` held-out examples cycling through the kinds; reproducible from ``seed``."""
    rng = random.Random(seed)
    fk = Faker("en_US")
    fk.seed_instance(seed)
    sch = schemas()
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        rec = make_record(kind, fk, rng)
        tpl = rng.choice(HELDOUT_TEMPLATES[kind])
        text, expected = _fill(kind, tpl, rec, rng)
        missing = [k for k in sch[kind]["required"] if k not in expected]
        if missing:  # template lacks a required field: state it in a second sentence
            extra = "; ".join(f"{k.replace('_', ' ')} {surface(kind, k, rec[k], rng)}" for k in missing)
            text = f"{text} ({extra})"
            expected = ordered(kind, rec, list(expected) + missing)
        out.append({"schema_name": kind, "schema": sch[kind], "text": text, "expected": expected})
    return out


def write_jsonl(path: str, n: int = 12, seed: int = 12345) -> None:
    """The held-out set as JSONL (``text``, ``expected``) for ``python -m steerdiff.train --heldout-file``:
    training evaluates on it without importing the benchmarks."""
    import json

    with open(path, "w", encoding="utf-8") as f:
        for h in heldout(n, seed):
            f.write(json.dumps({"text": h["text"], "expected": h["expected"]}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Print a few held-out examples, or --write them as JSONL.")
    ap.add_argument("--write", metavar="FILE", help="write the held-out set to FILE (JSONL) for --heldout-file")
    ap.add_argument("-n", type=int, default=12, help="number of examples (default 12)")
    a = ap.parse_args()
    if a.write:
        write_jsonl(a.write, a.n)
    else:
        for h in heldout(a.n):
            print(h["schema_name"], "|", h["text"], "->", h["expected"])
