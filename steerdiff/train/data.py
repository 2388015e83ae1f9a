"""Training data for steerdiff-tiny, built locally and reproducibly from a seed.

Three parts (mixed about 60 / 20 / 20):

* extraction: faker records of six kinds (``Person``, ``Contact``, ``Address``, ``Product``, ``Order``,
  ``Event``) written as English text in many phrasings; prompt = the text, target = compact JSON
  (``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``) with keys in schema order.
  Optional fields that the text does not mention are ABSENT from the JSON (never null).
* template fill: English sentences (restaurant/hotel/shop reviews, positive and negative, plus neutral
  sentences) with an empty prompt; the canvas is the sentence, and in about half of them a span in the
  middle is followed by a run of 1-6 ``[EOS]`` before the text continues (a hole padded inside).
* plain text: WordNet glosses and usage examples (Debian ``wordnet-base``), when installed.

An example is ``{"kind": ..., "prompt": str, "canvas": [str | int, ...]}``: canvas segments are text
(tokenized one by one and concatenated) or an int ``k`` meaning ``k`` ``[EOS]`` tokens.

The record generators and JSON Schemas are shared with ``benchmarks/extraction_data.py``, which writes
the same records with its own, different sentence templates.
"""
from __future__ import annotations

import datetime as _dt
import glob
import json
import os
import random
import re
from typing import Callable

from faker import Faker

# --------------------------------------------------------------------------------------------------
# Schemas (properties order = key order of the training JSON)
# --------------------------------------------------------------------------------------------------
ROLES = ["admin", "user"]
CATEGORIES = ["electronics", "clothing", "food", "toys", "books", "home", "sports", "beauty"]
STATUSES = ["pending", "shipped", "delivered", "cancelled"]

_S = {"type": "string"}
_SCHEMAS: dict[str, dict] = {
    "Person": {
        "properties": {
            "name": _S,
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
            "email": _S,
            "role": {"type": "string", "enum": ROLES},
        },
        "required": ["name", "age", "role"],
    },
    "Contact": {
        "properties": {
            "name": _S,
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
            "email": _S,
            "phone": _S,
            "city": _S,
            "job": _S,
            "company": _S,
        },
        "required": ["name"],
    },
    "Address": {
        "properties": {"street": _S, "city": _S, "state": _S, "zip": _S, "country": _S},
        "required": ["street", "city"],
    },
    "Product": {
        "properties": {
            "name": _S,
            "price": {"type": "number", "minimum": 0},
            "quantity": {"type": "integer", "minimum": 0, "maximum": 10000},
            "category": {"type": "string", "enum": CATEGORIES},
            "in_stock": {"type": "boolean"},
        },
        "required": ["name", "price"],
    },
    "Order": {
        "properties": {
            "order_id": _S,
            "customer": _S,
            "date": {"type": "string", "format": "date"},
            "total": {"type": "number", "minimum": 0},
            "status": {"type": "string", "enum": STATUSES},
            "paid": {"type": "boolean"},
        },
        "required": ["order_id", "customer", "date"],
    },
    "Event": {
        "properties": {
            "title": _S,
            "date": {"type": "string", "format": "date"},
            "time": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
            "location": _S,
            "attendees": {"type": "integer", "minimum": 1, "maximum": 5000},
            "online": {"type": "boolean"},
        },
        "required": ["title", "date"],
    },
}
KINDS = list(_SCHEMAS)


def schemas() -> dict[str, dict]:
    """JSON Schema of each record kind, exactly the JSON form used in training."""
    out = {}
    for name, s in _SCHEMAS.items():
        out[name] = {
            "title": name,
            "type": "object",
            "properties": json.loads(json.dumps(s["properties"])),
            "required": list(s["required"]),
            "additionalProperties": False,
        }
    return out


def to_json(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def ordered(kind: str, rec: dict, keys) -> dict:
    """The JSON object of ``rec`` restricted to ``keys``, in schema order."""
    keys = set(keys)
    return {k: rec[k] for k in _SCHEMAS[kind]["properties"] if k in keys}


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------
_ADJ = ["Wireless", "Organic", "Classic", "Compact", "Deluxe", "Portable", "Smart", "Vintage", "Ultra",
        "Eco", "Premium", "Mini", "Heavy-Duty", "Bamboo", "Stainless", "Leather", "Cotton", "Digital",
        "Ceramic", "Waterproof", "Foldable", "Electric", "Handmade", "Rechargeable", "Gourmet"]
_PRODUCTS = {
    "electronics": ["Mouse", "Keyboard", "Headphones", "Speaker", "Charger", "Webcam", "Monitor", "Router", "Tablet", "Power Bank"],
    "clothing": ["Jacket", "T-Shirt", "Scarf", "Sneakers", "Hoodie", "Socks", "Jeans", "Raincoat", "Gloves", "Hat"],
    "food": ["Green Tea", "Coffee Beans", "Olive Oil", "Dark Chocolate", "Honey", "Granola", "Pasta", "Hot Sauce"],
    "toys": ["Puzzle", "Building Blocks", "Teddy Bear", "Kite", "Race Car", "Board Game", "Yo-Yo"],
    "books": ["Cookbook", "Notebook", "Atlas", "Novel", "Field Guide", "Sketchbook", "Dictionary"],
    "home": ["Desk Lamp", "Water Bottle", "Coffee Mug", "Cutting Board", "Blender", "Pillow", "Candle", "Kettle"],
    "sports": ["Yoga Mat", "Dumbbell", "Tennis Racket", "Bike Helmet", "Jump Rope", "Football"],
    "beauty": ["Face Cream", "Shampoo", "Lip Balm", "Hair Dryer", "Perfume", "Sunscreen"],
}
_EVENT_A = ["Annual", "Quarterly", "Weekly", "Spring", "Summer", "Autumn", "Winter", "Monthly", "Open",
            "Community", "Regional", "Team", "Product", "Board", "Charity", "Student", "Public"]
_EVENT_B = ["Budget Review", "Planning Meeting", "Hackathon", "Book Club", "Town Hall", "Workshop",
            "Fundraiser", "Conference", "Design Sprint", "Kickoff", "Retrospective", "Gala", "Meetup",
            "Training Session", "Science Fair", "Career Day", "Concert", "Webinar", "Picnic", "Tournament"]
_VENUES = ["Room {n}", "Conference Room {L}", "the Main Hall", "Building {n}", "the Town Library",
           "the Community Center", "Hall {L}", "the Grand Hotel", "the City Park", "Studio {n}"]
_COUNTRIES = ["USA", "United States", "Canada", "Mexico", "United Kingdom", "Germany", "France", "Spain",
              "Italy", "Australia", "Ireland", "Netherlands", "Brazil", "Japan", "India", "Sweden"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def _price(rng: random.Random, lo=1, hi=500) -> float:
    # two decimals, last digit non-zero, so the text "$12.49" and the JSON 12.49 agree digit for digit
    while True:
        v = round(rng.uniform(lo, hi), 2)
        cents = int(round(v * 100)) % 100
        if cents % 10 != 0:
            return v


def _date(rng: random.Random) -> str:
    d = _dt.date(2019, 1, 1) + _dt.timedelta(days=rng.randrange(0, 365 * 9))
    return d.isoformat()


def _name(fk: Faker, rng: random.Random) -> str:
    return f"{fk.first_name()} {fk.last_name()}" if rng.random() < 0.9 else f"{fk.first_name()} {fk.first_name()} {fk.last_name()}"


def _email_for(name: str, fk: Faker, rng: random.Random) -> str:
    if rng.random() < 0.4:
        return fk.email()
    parts = re.sub(r"[^a-z ]", "", name.lower()).split()
    first, last = parts[0], parts[-1]
    user = rng.choice([first, f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}", f"{last}.{first}", f"{first}_{last}"])
    dom = rng.choice(["example.org", "example.com", "mail.com", fk.free_email_domain(), fk.domain_name()])
    return f"{user}@{dom}"


def make_record(kind: str, fk: Faker, rng: random.Random) -> dict:
    """All fields of one record of ``kind`` (templates decide which ones are mentioned)."""
    if kind in ("Person", "Contact"):
        name = _name(fk, rng)
        age = rng.randint(18, 95) if rng.random() < 0.85 else rng.randint(0, 130)
        rec = {"name": name, "age": age, "email": _email_for(name, fk, rng)}
        if kind == "Person":
            rec["role"] = rng.choice(ROLES)
        else:
            job = fk.job()
            while "," in job or len(job) > 32:
                job = fk.job()
            rec.update(phone=fk.phone_number(), city=fk.city(), job=job, company=fk.company())
        rec["_first"] = name.split()[0]
        return rec
    if kind == "Address":
        return {"street": fk.street_address(), "city": fk.city(), "state": fk.state_abbr(),
                "zip": fk.zipcode(), "country": rng.choice(_COUNTRIES)}
    if kind == "Product":
        cat = rng.choice(CATEGORIES)
        name = f"{rng.choice(_ADJ)} {rng.choice(_PRODUCTS[cat])}"
        if rng.random() < 0.2:
            name += f" {rng.choice(['Pro', 'Max', 'Lite', 'Plus', 'XL', '2', '3000', 'Mini'])}"
        return {"name": name, "price": _price(rng), "quantity": rng.choice([rng.randint(0, 20), rng.randint(1, 500)]),
                "category": cat, "in_stock": rng.random() < 0.6}
    if kind == "Order":
        oid = rng.choice(["A-{}", "#{}", "ORD-{}", "{}", "SO{}", "PO-{}"]).format(rng.randint(1000, 999999))
        return {"order_id": oid, "customer": _name(fk, rng), "date": _date(rng), "total": _price(rng, 5, 3000),
                "status": rng.choice(STATUSES), "paid": rng.random() < 0.6}
    if kind == "Event":
        title = f"{rng.choice(_EVENT_A)} {rng.choice(_EVENT_B)}"
        loc = rng.choice([fk.city(), rng.choice(_VENUES).format(n=rng.randint(1, 420), L=rng.choice("ABCDEFG"))])
        return {"title": title, "date": _date(rng), "time": f"{rng.choice(range(7, 22)):02d}:{rng.choice([0, 0, 15, 30, 30, 45, 5, 50]):02d}",
                "location": loc, "attendees": rng.randint(2, 800), "online": rng.random() < 0.35}
    raise KeyError(kind)


# --------------------------------------------------------------------------------------------------
# Surface forms of values (text differs from JSON for dates, times, prices, booleans, enums)
# --------------------------------------------------------------------------------------------------
def say_date(iso: str, rng: random.Random) -> str:
    y, m, d = (int(x) for x in iso.split("-"))
    mon = MONTHS[m - 1]
    suf = "th" if 11 <= d <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return rng.choice([iso, f"{mon} {d}, {y}", f"{d} {mon} {y}", f"{mon[:3]} {d}, {y}", f"{mon} {d}{suf}, {y}",
                       f"{mon} {d} {y}", f"the {d}{suf} of {mon} {y}"])


def say_time(hm: str, rng: random.Random) -> str:
    h, m = (int(x) for x in hm.split(":"))
    h12 = h % 12 or 12
    ap = "am" if h < 12 else "pm"
    opts = [hm, f"{h12}:{m:02d} {ap}", f"{h12}:{m:02d} {ap.upper()}", f"{h12}:{m:02d}{ap}"]
    if m == 0:
        opts += [f"{h12} {ap}", f"{h12}{ap}", f"{h12} o'clock" if 7 <= h <= 11 else f"{h12} {ap}"]
    return rng.choice(opts)


def say_money(v: float, rng: random.Random) -> str:
    s = f"{v:.2f}"
    if v >= 1000 and rng.random() < 0.3:
        s = f"{v:,.2f}"
    return rng.choice([f"${s}", f"${s}", f"{s} dollars", f"USD {s}", f"{s} USD", f"$ {s}"])


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


# --------------------------------------------------------------------------------------------------
# Template fill: review sentences with sentiment, and holes padded with [EOS] inside the canvas
# --------------------------------------------------------------------------------------------------
ASPECTS = ["food", "service", "staff", "waiter", "waitress", "pasta", "pizza", "coffee", "dessert", "soup", "steak",
           "atmosphere", "music", "room", "bed", "breakfast", "hotel", "price", "menu", "wine", "salad", "bread",
           "manager", "delivery", "shop", "checkout", "location", "view", "pool", "lobby", "team", "support"]
POS = ["great", "excellent", "wonderful", "delicious", "friendly", "amazing", "fantastic", "lovely", "perfect",
       "superb", "fresh", "helpful", "warm", "pleasant", "outstanding", "charming", "clean", "cozy", "tasty", "kind",
       "quick", "attentive", "beautiful", "good", "nice", "brilliant", "impressive", "generous", "relaxing", "fun"]
NEG = ["terrible", "awful", "bland", "rude", "horrible", "cold", "slow", "dirty", "disappointing", "poor", "bad",
       "stale", "noisy", "unfriendly", "overpriced", "greasy", "boring", "careless", "sloppy", "mediocre", "dull",
       "messy", "unhelpful", "annoying", "ugly", "weak", "dreadful", "soggy", "cramped", "nasty"]
ADV = ["", "", "", "really ", "very ", "truly ", "quite ", "so ", "incredibly ", "rather ", "absolutely ", "pretty "]
REVIEW_TPL = [
    "The {a} was {adv}{w}.", "The {a} is {adv}{w}.", "Our {a} was {adv}{w}.", "We found the {a} {adv}{w}.",
    "I thought the {a} was {adv}{w}.", "Honestly, the {a} was {adv}{w}.", "What a {w} {a}!", "The {a} here is always {w}.",
    "Everyone agreed the {a} was {adv}{w}.", "My friends said the {a} was {w}.", "The {a} felt {adv}{w} tonight.",
    "Overall, the {a} was {adv}{w}.", "I have to say the {a} was {adv}{w}.", "The {a} was {w} and the {a2} was {w2}.",
    "The {a} was {w}, but the {a2} was {w2}.", "We loved how {w} the {a} was.", "Such a {w} {a}.",
    "The {a} and the {a2} were both {adv}{w}.", "It was a {adv}{w} evening and the {a} was {w2}.",
    "I would call the {a} {adv}{w}.", "The {a} turned out {adv}{w}.", "{A} was {adv}{w}.",
]
CLOSERS_POS = ["We will come back.", "Highly recommended.", "Five stars.", "Can't wait to return.", "Thank you!",
               "I would recommend it to anyone.", "Best meal in a while."]
CLOSERS_NEG = ["We will not come back.", "Not recommended.", "One star.", "Never again.", "What a waste of money.",
               "I would not recommend it.", "Avoid this place."]


def review_sentence(rng: random.Random, polarity: str | None = None) -> str:
    pol = polarity or rng.choice(["pos", "neg"])
    words = POS if pol == "pos" else NEG
    tpl = rng.choice(REVIEW_TPL)
    a, a2 = rng.sample(ASPECTS, 2)
    mixed = "but" in tpl
    w2pool = (NEG if pol == "pos" else POS) if mixed else words
    s = tpl.format(a=a, a2=a2, A=a.capitalize(), adv=rng.choice(ADV), w=rng.choice(words), w2=rng.choice(w2pool))
    s = s[0].upper() + s[1:]
    s = s.replace("a excellent", "an excellent").replace("a amazing", "an amazing").replace("a awful", "an awful") \
         .replace("a outstanding", "an outstanding").replace("a ugly", "an ugly").replace("a impressive", "an impressive") \
         .replace("a overpriced", "an overpriced").replace("a unfriendly", "an unfriendly").replace("a annoying", "an annoying") \
         .replace("a unhelpful", "an unhelpful").replace("a absolutely", "an absolutely").replace("a incredibly", "an incredibly")
    return s


def review(rng: random.Random) -> str:
    pol = rng.choice(["pos", "neg"])
    n = rng.choice([1, 1, 2, 2, 3])
    sents = [review_sentence(rng, pol) for _ in range(n)]
    if rng.random() < 0.3:
        sents.append(rng.choice(CLOSERS_POS if pol == "pos" else CLOSERS_NEG))
    return " ".join(sents)


def fill_example(text: str, rng: random.Random) -> dict:
    """Canvas = the sentence; about half the time a middle span is followed by 1-6 [EOS] (hole padding)."""
    if rng.random() < 0.5:
        return {"kind": "fill", "prompt": "", "canvas": [text]}
    cuts = [m.start() for m in re.finditer(r" ", text)]
    if len(cuts) < 2:
        return {"kind": "fill", "prompt": "", "canvas": [text]}
    i, j = sorted(rng.sample(cuts, 2))
    if rng.random() < 0.25:
        j = len(text) - 1 if text[-1] in ".!?" else len(text)  # hole up to the final punctuation
    segs = [s for s in (text[:i], text[i:j], rng.randint(1, 6), text[j:]) if s != ""]
    return {"kind": "fill", "prompt": "", "canvas": segs}


# --------------------------------------------------------------------------------------------------
# Plain text: WordNet glosses and examples
# --------------------------------------------------------------------------------------------------
WORDNET_DIR = os.environ.get("STEERDIFF_WORDNET_DIR", "/usr/share/wordnet")  # the variable: a copy elsewhere (a GPU box)


def wordnet_sentences() -> list[str]:
    """Glosses (as sentences) and quoted usage examples from WordNet's data.* files; [] if not installed."""
    out, seen = [], set()
    for path in sorted(glob.glob(os.path.join(WORDNET_DIR, "data.*"))):
        if path.endswith((".exc",)) or not re.search(r"data\.(noun|verb|adj|adv)$", path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                gloss = line.split("|", 1)[1].strip()
                head = line.split()[4].replace("_", " ")
                for part in gloss.split("; "):
                    part = part.strip()
                    if not part:
                        continue
                    if part.startswith('"'):
                        s = part.strip('"').strip()
                        s = s.rstrip('"')
                    else:
                        s = f"{head[0].upper() + head[1:]}: {part}" if len(part) < 60 and rng_free_bool(part) else part[0].upper() + part[1:]
                        s = s if s.endswith((".", "!", "?")) else s + "."
                    if 12 <= len(s) <= 300 and s not in seen:
                        seen.add(s)
                        out.append(s)
    return out


def rng_free_bool(s: str) -> bool:
    """Deterministic coin from the text itself (so the sentence list does not depend on a seed)."""
    return (sum(map(ord, s)) % 3) == 0


def plain_example(text: str, rng: random.Random) -> dict:
    words = text.split(" ")
    if len(words) > 6 and rng.random() < 0.4:  # continuation: prompt = the beginning
        k = rng.randint(2, len(words) - 3)
        return {"kind": "plain", "prompt": " ".join(words[:k]), "canvas": [" " + " ".join(words[k:])]}
    return {"kind": "plain", "prompt": "", "canvas": [text]}


def copy_example(rng: random.Random, fk: Faker, wn: list[str]) -> dict:
    """A pure copy task (teaches the model to look values up in the prompt): the prompt is a sentence, a
    run of nonce words or a faker line; the canvas is the whole prompt (half the time) or one span of
    1-6 of its words. Nothing but the prompt predicts the canvas."""
    r = rng.random()
    if r < 0.4 and wn:
        text = rng.choice(wn)
    elif r < 0.7:
        text = " ".join(nonce_word(rng) if rng.random() < 0.7 else str(rng.randint(0, 9999)) for _ in range(rng.randint(2, 12)))
    else:
        text = rng.choice([fk.name(), fk.address().replace("\n", ", "), fk.company(), fk.email(), fk.phone_number(),
                           fk.job(), f"{fk.name()} {fk.email()}"])
    words = text.split(" ")
    if rng.random() < 0.5 and len(words) > 1:
        a = rng.randrange(len(words))
        b = min(len(words), a + rng.randint(1, 6))
        return {"kind": "copy", "prompt": text, "canvas": [" ".join(words[a:b])]}
    return {"kind": "copy", "prompt": text, "canvas": [text]}


# --------------------------------------------------------------------------------------------------
# The mix
# --------------------------------------------------------------------------------------------------
def build_dataset(n: int = 200_000, seed: int = 0, mix=(0.6, 0.2, 0.2), nonce: float = 0.0,
                  copy: float = 0.0, context: float = 0.0) -> dict:
    """``n`` examples: extraction / fill / plain in proportions ``mix``; reproducible from ``seed``.
    A share ``nonce`` of the extraction records get made-up names and places (``nonce_record``); a share
    ``copy`` of all examples are pure copy tasks (``copy_example``), taken out of the extraction share; a
    share ``context`` of the extraction texts have unrelated WordNet words around them (``with_context``).

    Returns ``{"examples": [...], "sizes": {...}}``. When WordNet is not installed its share goes to fill.
    """
    rng = random.Random(seed)
    fk = Faker("en_US")
    fk.seed_instance(seed)
    wn = wordnet_sentences()
    n_ext = int(n * mix[0])
    n_plain = int(n * mix[2]) if wn else 0
    n_fill = n - n_ext - n_plain
    n_copy = int(n * copy)
    n_ext -= n_copy
    ex = [extraction_example(fk, rng, nonce=nonce, context=context, wn=wn) for _ in range(n_ext)]
    ex += [copy_example(rng, fk, wn) for _ in range(n_copy)]
    # fill: mostly reviews; a fifth neutral WordNet sentences (also seen as plain text)
    fill = []
    for _ in range(n_fill):
        text = review(rng) if (not wn or rng.random() < 0.8) else rng.choice(wn)
        fill.append(fill_example(text, rng))
    plain = [plain_example(s, rng) for s in (rng.sample(wn, min(n_plain, len(wn))) if wn else [])]
    while len(plain) < n_plain:
        plain.append(plain_example(rng.choice(wn), rng))
    allx = ex + fill + plain
    rng.shuffle(allx)
    sizes = {"extraction": n_ext, "copy": n_copy, "fill": len(fill), "plain": len(plain), "total": len(allx),
             "wordnet_sentences_available": len(wn),
             "chars": sum(len(e["prompt"]) + sum(len(s) for s in e["canvas"] if isinstance(s, str)) for e in allx)}
    return {"examples": allx, "sizes": sizes}


def eval_set(n: int = 16, seed: int = 999) -> list[dict]:
    """Extraction examples from a faker seed not used in training (same templates): ``prompt``, ``expected``."""
    rng = random.Random(seed)
    fk = Faker("en_US")
    fk.seed_instance(seed)
    out = []
    for i in range(n):
        e = extraction_example(fk, rng, KINDS[i % len(KINDS)])
        out.append({"schema_name": e["schema"], "text": e["prompt"], "expected_json": e["canvas"][0]})
    return out


def texts_for_tokenizer(examples: list[dict]):
    for e in examples:
        if e["prompt"]:
            yield e["prompt"]
        for s in e["canvas"]:
            if isinstance(s, str):
                yield s
