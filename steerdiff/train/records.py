"""Record kinds for extraction training: JSON Schemas, faker records, and how values are said in text."""
from __future__ import annotations

import datetime as _dt
import json
import random
import re

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
