"""Training sentence templates for extraction (compositional clauses, key-value forms, bare lists), nonce
records that force copying, and unrelated context around a text."""
from __future__ import annotations

import random
import re

from faker import Faker

from .records import (KINDS, STATUSES, _SCHEMAS, _email_for, make_record, ordered, say_date, say_money,
                      say_time, to_json)

# --------------------------------------------------------------------------------------------------
# Training templates. Compositional: a subject frame + predicate clauses (shuffled, some omitted),
# key-value lists with several label names and separators, bare comma lists, and whole templates.
# --------------------------------------------------------------------------------------------------
_Phr = dict  # field -> list of phrases with {v}; bool/enum fields: value -> list
TRAIN = {
    "Person": {
        "subject": ["{v}", "{v}", "Our new member {v}", "The user {v}", "Meet {v}: she", "Meet {v}: he", "{v}, who",
                    "Account holder {v}", "Here is {v}, who", "The new account for {v} says the owner"],
        "pronoun": ["This person", "The user", "{first}", "{first}"],
        "clauses": {
            "age": ["is {v} years old", "is {v}", "is aged {v}", "turned {v} recently", "has just turned {v}",
                    "is {v} years of age", "gives an age of {v}"],
            "email": ["can be reached at {v}", "uses the email {v}", "has the email address {v}", "writes from {v}",
                      "registered with {v}", "lists {v} as email"],
            "role": {"admin": ["signs in as an admin", "is an admin", "has admin rights", "is an administrator",
                               "logs in with admin privileges", "manages the system as admin"],
                     "user": ["signs in as a user", "is a regular user", "has a standard user account", "is a normal user",
                              "logs in as a plain user", "uses a basic user account"]},
        },
        "labels": {"name": ["Name", "Full name", "name", "User"], "age": ["Age", "age", "Years"],
                   "email": ["Email", "E-mail", "email", "Mail"], "role": ["Role", "role", "Access", "Account type"]},
        "bare": {"age": ["{v}", "{v}", "age {v}", "{v} years old", "aged {v}"], "email": ["{v}", "{v}", "email {v}"],
                 "role": {"admin": ["admin", "signs in as an admin", "an admin", "role admin"],
                          "user": ["user", "signs in as a user", "a user", "role user"]}},
        "whole": [
            "{name}, {age}, {email}, signs in as a {role}.",
            "{name}, {age}, signs in as a {role}.",
            "{name} ({age}) is an {role} and uses {email}.",
            "{name} is {age} and has the {role} role.",
            "New {role}: {name}, age {age}.",
            "{name} <{email}>, {age} years old, role: {role}.",
            "Add {name} ({email}), {age}, as {role}.",
            "Please create a {role} account for {name}, who is {age}.",
            "{name} is a {age}-year-old {role}.",
            "{name}, a {age} year old {role}, can be emailed at {email}.",
        ],
        "optional_in_whole": {"email"},
    },
    "Contact": {
        "subject": ["{v}", "{v}", "{v}", "Our contact {v}", "Meet {v}, who", "This is {v}, who", "The candidate {v}",
                    "Our new colleague {v}", "Customer {v}", "{v}, our client,"],
        "pronoun": ["This person", "The contact", "{first}", "{first}", "The candidate"],
        "clauses": {
            "age": ["is {v} years old", "is aged {v}", "turned {v} this year", "is {v} years of age", "is {v}"],
            "email": ["can be reached at {v}", "uses the email {v}", "has the email address {v}", "writes from {v}", "reads mail at {v}"],
            "phone": ["can be called on {v}", "has the phone number {v}", "answers the phone at {v}", "gave {v} as phone number", "is reachable by phone at {v}"],
            "city": ["lives in {v}", "is based in {v}", "resides in {v}", "comes from {v}", "has a home in {v}", "moved to {v}"],
            "job": ["works as a {v}", "is employed as a {v}", "has a job as a {v}", "is a {v} by trade", "earns a living as a {v}"],
            "company": ["works for {v}", "is employed at {v}", "is on the staff of {v}", "joined {v}", "has a position at {v}"],
        },
        "labels": {"name": ["Name", "Full name", "Contact"], "age": ["Age"], "email": ["Email", "E-mail", "Mail"],
                   "phone": ["Phone", "Tel", "Phone number", "Mobile"], "city": ["City", "Location", "Home town"],
                   "job": ["Job", "Occupation", "Position", "Title"], "company": ["Company", "Employer", "Organization"]},
        "bare": {"age": ["{v}", "age {v}", "{v} years old"], "email": ["{v}"], "phone": ["{v}", "tel. {v}", "phone {v}"],
                 "city": ["{v}", "from {v}", "lives in {v}"], "job": ["{v}", "works as a {v}"], "company": ["{v}", "at {v}", "works for {v}"]},
        "whole": [
            "{name} is a {age}-year-old {job} from {city}.",
            "{name}, {job} at {company}, phone {phone}.",
            "Contact {name} at {email} or {phone}.",
            "{name} ({age}) lives in {city} and works for {company}.",
            "You can call {name} on {phone}.",
            "{name} from {company} can be emailed at {email}.",
            "Reach {name}, the {job}, at {email}.",
            "{name}, {age}, {city}.",
        ],
    },
    "Address": {
        "prefix": ["", "", "Address: ", "Please ship it to ", "My address is ", "We moved to ", "Deliver to ",
                   "Send the invoice to ", "The office is at ", "Our new address: ", "Mail goes to ", "She lives at ",
                   "The package should go to ", "Billing address: ", "Location: ", "The store is located at ",
                   "You can find us at ", "Shipping to ", "Home: ", "Return address - "],
        "formats": [
            ["street", ", ", "city", ", ", "state", " ", "zip"],
            ["street", ", ", "city", ", ", "state", " ", "zip", ", ", "country"],
            ["street", ", ", "city"],
            ["street", " in ", "city"],
            ["street", ", ", "city", ", ", "country"],
            ["street", ", ", "city", " ", "zip"],
            ["street", "; ", "city", ", ", "state"],
            ["street", ", ", "city", ", ", "state"],
            ["street", ", ", "zip", " ", "city"],
            ["street", ", ", "zip", " ", "city", ", ", "country"],
            ["street", " (", "city", ")"],
            ["street", ", ", "city", " (", "country", ")"],
            ["street", ", ", "city", ", ", "state", ", ", "country"],
            ["street", ", ", "city", ", ", "state", " ", "zip", " (", "country", ")"],
        ],
        "suffix": [".", ".", "", ". Thanks!", ", please.", ". Ring twice.", " for now.", "."],
        "labels": {"street": ["Street", "Address line", "Street address"], "city": ["City", "Town"],
                   "state": ["State", "Region"], "zip": ["ZIP", "Zip code", "Postcode", "Postal code"],
                   "country": ["Country"]},
    },
    "Product": {
        "subject": ["The {v}", "{v}", "Our {v}", "The new {v}", "This {v}", "Item: {v}, which", "Product {v}", "{v} -"],
        "pronoun": ["It", "The item", "This product", "It"],
        "clauses": {
            "price": ["costs {v}", "is priced at {v}", "sells for {v}", "goes for {v}", "retails at {v}", "has a price of {v}"],
            "quantity": ["has {v} units left", "comes in a lot of {v}", "is ordered in a quantity of {v}", "has {v} pieces in the warehouse",
                         "counts {v} units", "is available as {v} units"],
            "category": ["belongs in {v}", "is listed under {v}", "sits in the {v} category", "is filed under {v}", "is sold in the {v} section"],
            "in_stock": {True: ["is in stock", "is available now", "ships today", "is on the shelf"],
                         False: ["is out of stock", "is sold out", "is currently unavailable", "is back-ordered"]},
        },
        "labels": {"name": ["Product", "Item", "Name"], "price": ["Price", "Cost", "Unit price"],
                   "quantity": ["Qty", "Quantity", "Units"], "category": ["Category", "Section", "Dept"],
                   "in_stock": {True: ["In stock: yes", "Available: yes", "Stock: available"],
                                False: ["In stock: no", "Available: no", "Stock: sold out"]}},
        "bare": {"price": ["{v}", "{v}", "at {v}"], "quantity": ["qty {v}", "{v} units", "{v} pcs", "x{v}"],
                 "category": ["{v}", "category {v}"], "in_stock": {True: ["in stock", "available"], False: ["out of stock", "sold out"]}},
        "whole": [
            "{quantity} x {name} at {price} each.",
            "Buy the {name} for only {price}!",
            "{name}: {price}, {category}.",
            "We have {quantity} {name} units at {price}.",
            "The {name} ({category}) is {price}.",
            "Get {quantity} of the {name} for {price} apiece.",
        ],
    },
    "Order": {
        "subject": ["Order {v}", "Order {v}", "The order {v}", "Purchase {v}", "Order number {v}", "Your order {v}", "Ticket {v}"],
        "pronoun": ["It", "The order", "This order"],
        "clauses": {
            "customer": ["was placed by {v}", "belongs to {v}", "is for {v}", "was made by {v}", "is from customer {v}"],
            "date": ["was placed on {v}", "is dated {v}", "was made on {v}", "came in on {v}", "has the date {v}"],
            "total": ["totals {v}", "comes to {v}", "has a total of {v}", "amounts to {v}", "costs {v} in total"],
            "status": {"pending": ["is pending", "is still pending", "awaits processing", "has not shipped yet"],
                       "shipped": ["has shipped", "was shipped", "is on its way", "is in transit"],
                       "delivered": ["was delivered", "has been delivered", "arrived", "reached the customer"],
                       "cancelled": ["was cancelled", "has been cancelled", "was called off", "got cancelled"]},
            "paid": {True: ["is paid", "has been paid", "was paid in full", "is settled"],
                     False: ["is unpaid", "has not been paid", "is still unpaid", "awaits payment"]},
        },
        "labels": {"order_id": ["Order", "Order ID", "Order no."], "customer": ["Customer", "Buyer", "Client"],
                   "date": ["Date", "Order date", "Placed"], "total": ["Total", "Amount", "Sum"],
                   "status": ["Status", "State"],
                   "paid": {True: ["Paid: yes", "Payment: received"], False: ["Paid: no", "Payment: pending"]}},
        "bare": {"customer": ["{v}", "customer {v}", "for {v}"], "date": ["{v}", "on {v}", "dated {v}"], "total": ["{v}", "total {v}"],
                 "status": {s: [s, f"status {s}"] for s in STATUSES}, "paid": {True: ["paid"], False: ["unpaid", "not paid"]}},
        "whole": [
            "{customer} ordered on {date}: order {order_id}, {total}, {status}.",
            "On {date}, {customer} placed order {order_id} for {total}.",
            "Hi {customer}, your order {order_id} from {date} is {status}.",
            "{customer} paid {total} for order {order_id} on {date}.",
            "Order {order_id} ({date}) by {customer}: {status}.",
        ],
    },
    "Event": {
        "subject": ["The {v}", "{v}", "Our {v}", "The {v}", "Reminder: the {v}", "Save the date: the {v}", "Event: {v}, which", "Next up, the {v}"],
        "pronoun": ["It", "The event", "This event"],
        "clauses": {
            "date": ["is on {v}", "takes place on {v}", "happens on {v}", "is scheduled for {v}", "falls on {v}", "will be held on {v}"],
            "time": ["starts at {v}", "begins at {v}", "kicks off at {v}", "opens at {v}", "is at {v}"],
            "location": ["is in {v}", "takes place in {v}", "will be held at {v}", "is hosted at {v}", "meets at {v}"],
            "attendees": ["expects {v} guests", "has {v} attendees", "is for {v} people", "has room for {v} participants", "seats {v}"],
            "online": {True: ["is online", "is streamed online", "is a virtual event", "runs online only"],
                       False: ["is in person", "is an in-person event", "is not online", "is on site only"]},
        },
        "labels": {"title": ["Event", "Title", "What"], "date": ["Date", "When", "Day"], "time": ["Time", "Start", "Starts"],
                   "location": ["Location", "Where", "Venue", "Place"], "attendees": ["Attendees", "Guests", "Capacity"],
                   "online": {True: ["Online: yes", "Format: online", "Virtual: yes"], False: ["Online: no", "Format: in person", "Virtual: no"]}},
        "bare": {"date": ["{v}", "on {v}"], "time": ["{v}", "at {v}"], "location": ["{v}", "at {v}", "in {v}"],
                 "attendees": ["{v} people", "{v} guests", "{v} attendees"], "online": {True: ["online", "virtual"], False: ["in person", "on site"]}},
        "whole": [
            "Join us for the {title} on {date} at {time} in {location}.",
            "The {title} is on {date}.",
            "{title}: {date}, {time}, {location}.",
            "Don't miss the {title} at {time} on {date}!",
            "On {date} we hold the {title} at {location} for {attendees} people.",
            "{title} - {date} {time} ({location}).",
        ],
    },
}
_SUBJ_FIELD = {"Person": "name", "Contact": "name", "Product": "name", "Order": "order_id", "Event": "title"}


def surface(kind: str, field: str, v, rng: random.Random) -> str:
    """How a JSON value is written in text (dates, times, money vary; strings verbatim)."""
    if field == "date":
        return say_date(v, rng)
    if field == "time":
        return say_time(v, rng)
    if field in ("price", "total"):
        return say_money(v, rng)
    return str(v)


def _phrase(spec, v, rng):
    """Pick a phrase for value ``v``: spec is a list with {v} or a dict value -> list (bools, enums)."""
    if isinstance(spec, dict):
        return rng.choice(spec[v])
    return rng.choice(spec)


def _join(parts: list[str], rng: random.Random) -> str:
    if len(parts) == 1:
        return parts[0]
    last = rng.choice([" and ", ", and ", ", "]) if len(parts) > 1 else ""
    return ", ".join(parts[:-1]) + last + parts[-1]


def _choose_fields(kind: str, rng: random.Random, always=()) -> list[str]:
    s = _SCHEMAS[kind]
    keep = [k for k in s["properties"] if k in s["required"] or k in always or rng.random() < 0.55]
    return keep


def render_train(kind: str, rec: dict, rng: random.Random) -> tuple[str, dict]:
    """One training text for ``rec`` and the JSON object it mentions."""
    t = TRAIN[kind]
    if kind == "Address":
        return _render_address(rec, rng, t)
    r = rng.random()
    if r < 0.15 and t.get("whole"):
        tpl = rng.choice(t["whole"])
        keys = re.findall(r"\{(\w+)\}", tpl)
        vals = {k: surface(kind, k, rec[k], rng) for k in keys}
        text = tpl.format(**vals)
        text = text.replace(" a admin", " an admin").replace(" an user", " a user")
        return text, ordered(kind, rec, keys)
    fields = _choose_fields(kind, rng)
    if r < 0.6:
        return _render_narrative(kind, rec, fields, rng, t), ordered(kind, rec, fields)
    if r < 0.82:
        return _render_kv(kind, rec, fields, rng, t), ordered(kind, rec, fields)
    return _render_bare(kind, rec, fields, rng, t), ordered(kind, rec, fields)


def _article(s: str) -> str:
    return "an" if s[:1].lower() in "aeiou" else "a"


def _clause(kind, field, rec, rng, t):
    spec = t["clauses"][field]
    v = rec[field]
    p = _phrase(spec, v, rng)
    out = p.replace("{v}", surface(kind, field, v, rng))
    if field == "job":
        out = out.replace(" a " + rec[field], f" {_article(rec[field])} " + rec[field])
    return out


def _render_narrative(kind, rec, fields, rng, t):
    sf = _SUBJ_FIELD[kind]
    others = [f for f in fields if f != sf]
    rng.shuffle(others)
    subj = rng.choice(t["subject"]).replace("{v}", surface(kind, sf, rec[sf], rng))
    if not others:
        return subj.rstrip(",:- ") + rng.choice([".", " is on file.", " was added.", " is new here."])
    clauses = [_clause(kind, f, rec, rng, t) for f in others]
    if len(clauses) >= 3 and rng.random() < 0.4:  # two sentences, the second with a pronoun
        cut = rng.randint(1, len(clauses) - 1)
        pron = rng.choice(t["pronoun"]).replace("{first}", rec.get("_first", "It"))
        text = f"{subj} {_join(clauses[:cut], rng)}. {pron} {_join(clauses[cut:], rng)}."
    else:
        text = f"{subj} {_join(clauses, rng)}."
    if rng.random() < 0.1:
        text = rng.choice(["FYI: ", "Note: ", "Update: ", "Hello! ", "Quick note. "]) + text
    return text


def _kv_item(kind, field, rec, rng, t, sep):
    lab = t["labels"][field]
    v = rec[field]
    if isinstance(lab, dict):
        return rng.choice(lab[v])
    return f"{rng.choice(lab)}{sep}{surface(kind, field, v, rng)}"


def _render_kv(kind, rec, fields, rng, t):
    fields = list(fields)
    if rng.random() < 0.4:
        rng.shuffle(fields)
    sep = rng.choice([": ", ": ", " = ", " - ", ":"])
    joiner = rng.choice(["; ", ", ", "\n", " | ", ". ", " / "])
    text = joiner.join(_kv_item(kind, f, rec, rng, t, sep) for f in fields)
    if rng.random() < 0.3:
        text = rng.choice(["Record: ", "Details: ", "Form data - ", f"{kind}: ", "Entry\n"]) + text
    return text


def _render_bare(kind, rec, fields, rng, t):
    sf = _SUBJ_FIELD[kind]
    others = [f for f in fields if f != sf]
    if rng.random() < 0.3:
        rng.shuffle(others)
    parts = [surface(kind, sf, rec[sf], rng)]
    for f in others:
        spec = t["bare"][f]
        parts.append(_phrase(spec, rec[f], rng).replace("{v}", surface(kind, f, rec[f], rng)))
    return rng.choice([", ", ", ", "; ", " / "]).join(parts) + rng.choice([".", ".", "", "!"])


def _render_address(rec, rng, t):
    r = rng.random()
    if r < 0.2:
        fields = _choose_fields("Address", rng)
        sep = rng.choice([": ", ": ", " = "])
        return rng.choice(["; ", ", ", "\n", " | "]).join(
            f"{rng.choice(t['labels'][f])}{sep}{rec[f]}" for f in fields), ordered("Address", rec, fields)
    fmt = rng.choice(t["formats"])
    fields = [x for x in fmt[::2]]
    body = "".join(rec[x] if i % 2 == 0 else x for i, x in enumerate(fmt))
    prefix = rng.choice(t["prefix"])
    suffix = rng.choice(t["suffix"])
    return prefix + body + suffix, ordered("Address", rec, fields)


# --------------------------------------------------------------------------------------------------
# Nonce values: names no prior can guess, so the only way to predict them is to copy from the prompt
# --------------------------------------------------------------------------------------------------
_ONSET = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "ch",
          "cl", "dr", "gr", "kr", "pl", "sh", "st", "th", "tr", "qu", ""]
_VOWEL = ["a", "e", "i", "o", "u", "a", "e", "o", "y", "ai", "ea", "ou", "ie"]
_CODA = ["", "", "", "n", "r", "l", "s", "th", "x", "k", "m", "nd", "rt"]


def nonce_word(rng: random.Random) -> str:
    """A pronounceable made-up word of 1-3 syllables, capitalised (``Brelox``, ``Tumaith``)."""
    w = "".join(rng.choice(_ONSET) + rng.choice(_VOWEL) + rng.choice(_CODA) for _ in range(rng.choice([1, 2, 2, 2, 3])))
    return w[:1].upper() + w[1:]


def nonce_record(kind: str, rec: dict, fk: Faker, rng: random.Random) -> dict:
    """``rec`` with its free-text values (names, places, companies, titles) replaced by nonce words."""
    rec = dict(rec)
    w = lambda: nonce_word(rng)  # noqa: E731
    place = lambda: rng.choice([w(), w(), f"{w()} {rng.choice(['City', 'Falls', 'Springs', 'Harbor', 'Park'])}", f"{w()} {w()}"])  # noqa: E731
    if kind in ("Person", "Contact"):
        name = f"{w()} {w()}" if rng.random() < 0.85 else f"{w()} {w()} {w()}"
        rec.update(name=name, _first=name.split()[0], email=_email_for(name, fk, rng))
        if kind == "Contact":
            rec.update(city=place(), company=rng.choice([w(), f"{w()} {rng.choice(['Inc', 'LLC', 'Group', 'Ltd', 'and Sons'])}", f"{w()}-{w()}"]))
    elif kind == "Address":
        rec.update(street=f"{rng.randint(1, 9999)} {w()} {rng.choice(['Street', 'Road', 'Avenue', 'Lane', 'Way', 'Court'])}",
                   city=place())
    elif kind == "Product":
        rec["name"] = rng.choice([f"{w()} {rec['name'].split()[-1]}", f"{w()} {w()}", w()])
    elif kind == "Order":
        rec["customer"] = f"{w()} {w()}"
    elif kind == "Event":
        rec.update(title=rng.choice([f"{w()} {rec['title'].split()[-1]}", f"{w()} {w()}"]), location=place())
    return rec


def with_context(text: str, rng: random.Random, wn: list[str]) -> str:
    """``text`` with unrelated words around it: a lead-in of the first 1-6 words of a WordNet sentence
    ("According to the ...", "Make a ...") and/or a WordNet sentence after it. The JSON is unchanged, so
    the model learns that a value is not whatever words stand next to the record (a name does not start
    at the first word of the text), without seeing the held-out templates."""
    r = rng.random()
    if r < 0.7:
        words = rng.choice(wn).split(" ")
        lead = " ".join(words[: rng.randint(1, min(6, len(words)))]).rstrip(".,;:!?")
        text = lead + rng.choice([" ", " ", ", ", ": ", " - ", ". "]) + text
    if r > 0.4:
        text = text + rng.choice([" ", " ", "\n"]) + rng.choice(wn)
    return text


def extraction_example(fk: Faker, rng: random.Random, kind: str | None = None, nonce: float = 0.0,
                       context: float = 0.0, wn: list[str] | None = None) -> dict:
    """One extraction example; with probability ``nonce`` its free-text values are nonce words, with
    probability ``context`` the text has unrelated WordNet words around it (:func:`with_context`)."""
    kind = kind or rng.choice(KINDS)
    rec = make_record(kind, fk, rng)
    if nonce and rng.random() < nonce:
        rec = nonce_record(kind, rec, fk, rng)
    text, obj = render_train(kind, rec, rng)
    if context and wn and rng.random() < context:
        text = with_context(text, rng, wn)
    return {"kind": "extract", "schema": kind, "prompt": text, "canvas": [to_json(obj)]}
