"""The pool of field kinds for open-ended extraction tasks (``tasks.py`` composes them into schemas and texts).

A :class:`Kind` knows four things:

* ``schema``: its JSON Schema fragment (``type``, ``format``, ``enum``, ``pattern``, bounds);
* ``sample(fk, rng)``: a value (the JSON value the extraction must produce);
* ``say(v, rng)``: one of several ways to write that value in text (``"2024-03-05"`` -> ``"March 5, 2024"``,
  ``1234.5`` -> ``"$1,234.50"``, ``True`` -> ``"yes"``); ``verbatim`` kinds always write the JSON string as is,
  so the value is a span of the text;
* ``names``: field names (synonyms, as word tuples; ``key_name`` cases them: ``org_name``, ``orgName``, ...),
  ``labels``: how a text introduces the field, and ``clauses``: prose templates (``{v}`` the value's surface,
  ``{l}`` a label); booleans have ``yes``/``no`` phrasings instead.

Values come from faker (``en_US`` plus a few other locales' names and places, chosen by the caller's Faker) and
word lists. Everything is reproducible from the ``random.Random`` and the seeded ``Faker`` passed in.
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any, Callable

from faker import Faker

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
SMALL = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]


@dataclass(frozen=True)
class Kind:
    """One field kind. ``names``: synonyms for the JSON key, each a tuple of words; ``labels``: words a text
    uses for the field; ``clauses``: prose templates with ``{v}`` (and optionally ``{l}``)."""
    name: str
    group: str
    schema: dict
    sample: Callable[[Faker, random.Random], Any]
    names: tuple
    labels: tuple = ()
    clauses: tuple = ()
    say: Callable[[Any, random.Random], str] | None = None
    verbatim: bool = True  # the JSON value (a string) is written as is in the text
    yes: tuple = ()  # booleans: phrases meaning true
    no: tuple = ()  # booleans: phrases meaning false
    item_names: tuple = field(default=())  # for list fields: names of the array ("skills", "tags")

    def surface(self, v, rng: random.Random) -> str:
        """How ``v`` is written in a text (a key-value line or a clause)."""
        if self.schema.get("type") == "boolean":
            return rng.choice(self.yes if v else self.no)
        if self.say is not None:
            return self.say(v, rng)
        return str(v)

    def label(self, rng: random.Random) -> str:
        return rng.choice(self.labels) if self.labels else " ".join(rng.choice(self.names))


# --------------------------------------------------------------------------------------------------
# Saying values
# --------------------------------------------------------------------------------------------------
def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def say_date(iso: str, rng: random.Random) -> str:
    y, m, d = (int(x) for x in iso.split("-"))
    mon = MONTHS[m - 1]
    return rng.choice([
        f"{mon} {d}, {y}", f"{d} {mon} {y}", f"{mon[:3]} {d}, {y}", f"{d} {mon[:3]} {y}", iso,
        f"{ordinal(d)} {mon} {y}", f"the {ordinal(d)} of {mon} {y}", f"{mon} {ordinal(d)}, {y}", iso,
        f"{d}.{m}.{y}" if d > 12 else iso, f"{m}/{d}/{y}" if d > 12 else f"{mon} {d} {y}",
    ])


def say_time(hm: str, rng: random.Random) -> str:
    h, m = (int(x) for x in hm.split(":"))
    h12 = h % 12 or 12
    ap = rng.choice(["am", "AM", "a.m."]) if h < 12 else rng.choice(["pm", "PM", "p.m."])
    opts = [hm, f"{h12}:{m:02d} {ap}", f"{h12}:{m:02d}{ap}", f"{h}h{m:02d}"]
    if m == 0:
        opts += [f"{h12} {ap}", f"{h12}{ap}", f"{h12} o'clock" if 8 <= h <= 18 else hm]
    if m == 30:
        opts.append(f"half past {h12} {ap}")
    return rng.choice(opts)


def say_amount(v: float, rng: random.Random, symbol: str = "$", code: str = "USD", word: str = "dollars") -> str:
    whole = float(v).is_integer()
    plain = f"{v:.2f}" if not whole or rng.random() < 0.4 else f"{int(v)}"
    comma = f"{v:,.2f}" if not whole or rng.random() < 0.4 else f"{int(v):,}"
    return rng.choice([f"{symbol}{comma}", f"{symbol}{plain}", f"{plain} {code}", f"{code} {comma}", f"{plain} {word}",
                       f"{symbol}{comma}"])


def say_int(v: int, rng: random.Random) -> str:
    if 0 <= v <= 20 and rng.random() < 0.35:
        return SMALL[v]
    if v >= 10000 and rng.random() < 0.5:
        return f"{v:,}"
    return str(v)


def say_date_time(v: str, rng: random.Random) -> str:
    d, t = v.split("T")
    return f"{say_date(d, rng)}{rng.choice([' at ', ', ', ' '])}{say_time(t[:5], rng)}"


# --------------------------------------------------------------------------------------------------
# Word lists
# --------------------------------------------------------------------------------------------------
COUNTRIES = ["France", "Germany", "Spain", "Italy", "Portugal", "Japan", "Brazil", "Canada", "Mexico", "India",
             "Kenya", "Nigeria", "Egypt", "Norway", "Sweden", "Poland", "Greece", "Turkey", "Chile", "Peru",
             "Argentina", "Australia", "New Zealand", "Ireland", "Vietnam", "Thailand", "South Korea", "Morocco",
             "Netherlands", "Belgium", "Austria", "Switzerland", "Denmark", "Finland", "Colombia", "Indonesia",
             "United States", "United Kingdom", "China", "Ghana", "Czech Republic", "Hungary", "Romania"]
CURRENCIES = {"USD": ("$", "dollars"), "EUR": ("€", "euros"), "GBP": ("£", "pounds"), "JPY": ("¥", "yen"),
              "CHF": ("CHF ", "Swiss francs"), "CAD": ("C$", "Canadian dollars"), "AUD": ("A$", "Australian dollars"),
              "INR": ("₹", "rupees"), "SEK": ("SEK ", "kronor"), "MXN": ("MX$", "pesos")}
PRODUCT_ADJ = ["Ultra", "Classic", "Smart", "Pro", "Mini", "Eco", "Deluxe", "Compact", "Wireless", "Organic", "Heavy-Duty",
               "Portable", "Premium", "Basic", "Vintage", "Foldable", "Stainless", "Bamboo", "Ceramic", "Carbon"]
PRODUCT_NOUN = ["Blender", "Backpack", "Desk Lamp", "Headphones", "Kettle", "Yoga Mat", "Water Bottle", "Keyboard",
                "Monitor Stand", "Coffee Grinder", "Tent", "Running Shoes", "Phone Case", "Toaster", "Drill",
                "Notebook", "Umbrella", "Sunglasses", "Air Fryer", "Bike Helmet", "Charger", "Frying Pan", "Jacket",
                "Speaker", "Watch", "Vacuum", "Office Chair", "Router", "Scarf", "Teapot"]
BRANDS = ["Northwind", "Acme", "Lumen", "Orbit", "Vertex", "Cobalt", "Harbor", "Pinecrest", "Solace", "Tandem",
          "Kestrel", "Juniper", "Atlas", "Meridian", "Brightline", "Fjord", "Quill", "Sable", "Zephyr", "Ember"]
COLORS = ["red", "blue", "green", "black", "white", "grey", "navy", "beige", "yellow", "orange", "purple", "pink",
          "teal", "brown", "silver", "gold"]
SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
PRIORITIES = ["low", "medium", "high", "urgent"]
SEVERITIES = ["minor", "major", "critical", "blocker"]
TICKET_STATUS = ["open", "in progress", "resolved", "closed", "on hold"]
ORDER_STATUS = ["pending", "processing", "shipped", "delivered", "cancelled", "returned"]
PAYMENT = ["credit card", "debit card", "PayPal", "bank transfer", "cash", "Apple Pay", "invoice"]
SHIPPING = ["standard", "express", "overnight", "pickup"]
EMPLOYMENT = ["full-time", "part-time", "contract", "internship", "temporary"]
SENIORITY = ["junior", "mid-level", "senior", "lead", "principal"]
DEPARTMENTS = ["Engineering", "Marketing", "Sales", "Finance", "Human Resources", "Legal", "Operations", "Support",
               "Design", "Research", "Logistics", "Procurement"]
CABIN = ["economy", "premium economy", "business", "first"]
MEALS = ["vegetarian", "vegan", "gluten-free", "halal", "kosher", "standard"]
ROOM = ["single", "double", "twin", "suite", "family room"]
GENRES = ["jazz", "rock", "classical", "hip hop", "folk", "electronic", "pop", "blues", "country", "reggae"]
CUISINES = ["Italian", "Mexican", "Japanese", "Indian", "Thai", "French", "Greek", "Lebanese", "Korean", "Ethiopian",
            "Spanish", "Vietnamese"]
DIFFICULTY = ["easy", "moderate", "hard"]
SENTIMENT = ["positive", "negative", "neutral", "mixed"]
CONDITION = ["new", "like new", "good", "fair", "used", "refurbished"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
GENDERS = ["female", "male", "non-binary"]
LANGUAGES = ["English", "Spanish", "French", "German", "Portuguese", "Mandarin", "Japanese", "Arabic", "Hindi",
             "Italian", "Dutch", "Russian", "Korean", "Swahili", "Polish", "Turkish"]
SKILLS = ["Python", "SQL", "Excel", "Java", "project management", "customer service", "negotiation", "accounting",
          "Photoshop", "public speaking", "data analysis", "copywriting", "Kubernetes", "welding", "first aid",
          "bookkeeping", "React", "machine learning", "forklift operation", "graphic design"]
INGREDIENTS = ["flour", "sugar", "butter", "eggs", "milk", "garlic", "onion", "tomatoes", "basil", "olive oil", "rice",
               "chicken", "lemon", "ginger", "salt", "pepper", "cheese", "spinach", "carrots", "honey", "yogurt",
               "cinnamon", "potatoes", "mushrooms"]
TAGS = ["urgent", "billing", "vip", "follow-up", "new customer", "refund", "bug", "feature request", "travel",
        "internal", "draft", "confidential", "marketing", "onboarding"]
SYMPTOMS = ["headache", "fever", "cough", "back pain", "sore throat", "fatigue", "nausea", "dizziness", "rash",
            "shortness of breath", "knee pain", "insomnia"]
UNITS = ["kg", "g", "lb", "ml", "l", "pcs", "boxes", "m", "cm"]
STATES = ["California", "Texas", "New York", "Ohio", "Oregon", "Florida", "Georgia", "Illinois", "Colorado",
          "Washington", "Arizona", "Michigan", "Nevada", "Utah", "Maine", "Vermont"]
AIRPORTS = ["JFK", "LAX", "SFO", "ORD", "ATL", "SEA", "BOS", "DEN", "MIA", "LHR", "CDG", "FRA", "AMS", "MAD", "FCO",
            "NRT", "SYD", "YYZ", "DXB", "SIN", "ZRH", "DUB", "LIS", "CPH"]
CARRIERS = ["Skyline Air", "Bluejay Airways", "Aurora Airlines", "Coastal Jet", "Nordwind Air", "Pacifica Airlines",
            "Sunward", "Meridian Air", "Polar Express Air", "Altura"]


def _pick(xs):
    return lambda fk, rng: rng.choice(xs)


def _date(lo_year=2019, hi_year=2027):
    def f(fk, rng):
        y, m = rng.randint(lo_year, hi_year), rng.randint(1, 12)
        d = rng.randint(1, 28)
        return f"{y:04d}-{m:02d}-{d:02d}"
    return f


def _hm(fk, rng):
    return f"{rng.randint(6, 22):02d}:{rng.choice([0, 0, 15, 30, 30, 45, 5, 10, 20, 40, 50]):02d}"


def num(x: float):
    """``x`` as an int when it is whole (JSON ``120``, not ``120.0``)."""
    return int(x) if float(x).is_integer() else x


def _money(lo, hi, cents=True):
    def f(fk, rng):
        v = rng.uniform(lo, hi)
        if rng.random() < 0.35 or not cents:
            return int(v)
        return num(round(v, 2))
    return f


def _code(pattern: str):
    """``#`` digit, ``?`` upper-case letter, anything else literal."""
    def f(fk, rng):
        return "".join(rng.choice(string.digits) if c == "#" else rng.choice(string.ascii_uppercase) if c == "?"
                       else c for c in pattern)
    return f


def _product(fk, rng):
    return rng.choice([f"{rng.choice(BRANDS)} {rng.choice(PRODUCT_ADJ)} {rng.choice(PRODUCT_NOUN)}",
                       f"{rng.choice(PRODUCT_ADJ)} {rng.choice(PRODUCT_NOUN)}", f"{rng.choice(BRANDS)} {rng.choice(PRODUCT_NOUN)}"])


def _person(fk, rng):
    return rng.choice([fk.name, fk.name, lambda: f"{fk.first_name()} {fk.last_name()}",
                       lambda: f"{fk.first_name()} {fk.last_name()}-{fk.last_name()}"])()


def _email(fk, rng):
    first, last = fk.first_name().lower(), fk.last_name().lower().replace(" ", "").replace("'", "")
    user = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}", first, f"{last}.{first[0]}"])
    return f"{user}@{fk.free_email_domain() if rng.random() < 0.5 else fk.domain_name()}"


def _phone(fk, rng):
    return rng.choice([f"+1 {fk.numerify('###-###-####')}", fk.numerify("(###) ###-####"), fk.numerify("###-###-####"),
                       f"+44 {fk.numerify('20 #### ####')}", f"+49 {fk.numerify('30 ########')}", fk.numerify("###.###.####"),
                       f"+33 {fk.numerify('# ## ## ## ##')}"])


def _url(fk, rng):
    return rng.choice([f"https://www.{fk.domain_name()}", f"https://{fk.domain_name()}/{fk.uri_path()}",
                       f"http://{fk.domain_name()}", f"https://{fk.domain_word()}.io/{fk.slug()}"])


def _street(fk, rng):
    return fk.street_address().replace("\n", ", ")


def _company(fk, rng):
    return rng.choice([fk.company, fk.company, lambda: f"{fk.last_name()} {rng.choice(['Labs', 'Studio', 'Partners', 'Foods', 'Logistics', 'Clinic', 'Bakery', 'Motors'])}"])()


def _flight(fk, rng):
    return f"{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase + string.digits)}{rng.randint(10, 9999)}"


def _int(lo, hi):
    return lambda fk, rng: rng.randint(lo, hi)


def _dt(fk, rng):
    return f"{_date()(fk, rng)}T{_hm(fk, rng)}:00Z"


S = {"type": "string"}


def _money_kind(name, names, labels, clauses, lo, hi):
    return Kind(name, "money", {"type": "number", "minimum": 0}, _money(lo, hi), names, labels, clauses,
                say=say_amount, verbatim=False)


def _enum(name, group, values, names, labels=(), clauses=()):
    return Kind(name, group, {"type": "string", "enum": list(values)}, _pick(values), names, labels, clauses)


def _bool(name, group, names, yes, no, labels=()):
    return Kind(name, group, {"type": "boolean"}, lambda fk, rng: rng.random() < 0.5, names, labels, verbatim=False,
                yes=tuple(yes), no=tuple(no))


def _list(name, group, values, names, labels=(), lo=1, hi=4):
    """An array-of-strings kind (items from ``values``, distinct, in the order the text gives them)."""
    return Kind(name, group, {"type": "array", "items": {"type": "string"}},
                lambda fk, rng: rng.sample(values, rng.randint(lo, hi)), names, labels, verbatim=False,
                say=lambda v, rng: _join_list(v, rng))


def _join_list(v: list, rng: random.Random) -> str:
    if len(v) == 1:
        return v[0]
    sep = rng.choice([", ", ", ", "; ", " / "])
    last = rng.choice([" and ", ", ", " & "]) if sep == ", " else sep
    return sep.join(v[:-1]) + last + v[-1]


# --------------------------------------------------------------------------------------------------
# The pool
# --------------------------------------------------------------------------------------------------
POOL: list[Kind] = [
    # people
    Kind("person_name", "person", S, _person, (("name",), ("full", "name"), ("contact", "name"), ("person",), ("customer",),
         ("client", "name")), ("name", "full name", "contact"), ("{v} is the contact", "the name is {v}", "my name is {v}",
         "this is {v}", "{v} wrote in", "it concerns {v}", "on behalf of {v}")),
    Kind("first_name", "person", S, lambda fk, rng: fk.first_name(), (("first", "name"), ("given", "name"), ("forename",)),
         ("first name", "given name"), ("first name {v}", "{v} goes by their first name")),
    Kind("last_name", "person", S, lambda fk, rng: fk.last_name(), (("last", "name"), ("surname",), ("family", "name")),
         ("last name", "surname", "family name"), ("surname {v}", "family name {v}")),
    Kind("age", "person", {"type": "integer", "minimum": 0, "maximum": 120}, _int(18, 90), (("age",), ("age", "years")),
         ("age",), ("is {v} years old", "aged {v}", "age {v}", "is {v}"), say=say_int, verbatim=False),
    Kind("birth_date", "person", {"type": "string", "format": "date"}, _date(1940, 2006), (("birth", "date"), ("date", "of", "birth"),
         ("dob",), ("birthday",)), ("date of birth", "born", "DOB", "birthday"), ("was born on {v}", "was born {v}", "date of birth {v}"),
         say=say_date, verbatim=False),
    _enum("gender", "person", GENDERS, (("gender",), ("sex",)), ("gender",)),
    Kind("job_title", "person", S, lambda fk, rng: fk.job(), (("job", "title"), ("position",), ("role",), ("occupation",),
         ("title",), ("job",)), ("job title", "position", "role", "occupation"), ("works as a {v}", "is a {v}",
         "position: {v}", "hired as {v}", "the role of {v}", "job title {v}")),
    Kind("email", "contact", {"type": "string", "format": "email"}, _email, (("email",), ("email", "address"), ("e", "mail"),
         ("contact", "email"), ("mail",)), ("email", "e-mail", "mail"), ("email {v}", "reachable at {v}", "write to {v}",
         "mail: {v}", "at {v}", "email address {v}")),
    Kind("phone", "contact", S, _phone, (("phone",), ("phone", "number"), ("telephone",), ("mobile",), ("tel",), ("cell",)),
         ("phone", "tel.", "mobile", "cell", "telephone"), ("call {v}", "phone {v}", "on {v}", "mobile {v}", "tel. {v}")),
    Kind("website", "contact", {"type": "string", "format": "uri"}, _url, (("website",), ("url",), ("homepage",), ("web", "site"),
         ("link",)), ("website", "URL", "site", "link"), ("see {v}", "website {v}", "online at {v}", "details at {v}")),
    Kind("username", "contact", S, lambda fk, rng: fk.user_name(), (("username",), ("user", "name"), ("handle",), ("login",)),
         ("username", "handle", "login"), ("username {v}", "logs in as {v}", "handle @{v}")),
    _list("languages", "person", LANGUAGES, (("languages",), ("spoken", "languages")), ("languages", "speaks")),
    _list("skills", "person", SKILLS, (("skills",), ("competencies",), ("expertise",)), ("skills", "experience with")),
    # organisations and work
    Kind("company", "org", S, _company, (("company",), ("employer",), ("organisation",), ("organization",), ("org", "name"),
         ("company", "name"), ("firm",), ("business",)), ("company", "employer", "organisation", "firm"),
         ("works at {v}", "employed by {v}", "at {v}", "{v} is the employer", "joined {v}", "for {v}", "company: {v}")),
    _enum("department", "org", DEPARTMENTS, (("department",), ("dept",), ("team",), ("division",)), ("department", "team"),
          ("in the {v} team", "{v} department", "part of {v}")),
    _enum("employment_type", "org", EMPLOYMENT, (("employment", "type"), ("contract", "type"), ("job", "type")),
          ("employment type", "contract"), ("a {v} position", "{v} role", "this is {v}")),
    _enum("seniority", "org", SENIORITY, (("seniority",), ("level",), ("experience", "level")), ("level", "seniority"),
          ("{v} level", "looking for a {v} person")),
    _money_kind("salary", (("salary",), ("annual", "salary"), ("pay",), ("compensation",)), ("salary", "pay", "compensation"),
                ("pays {v}", "salary of {v}", "{v} a year", "compensation {v}"), 25000, 180000),
    Kind("employees", "org", {"type": "integer", "minimum": 1}, _int(2, 50000), (("employees",), ("headcount",), ("staff", "count"),
         ("team", "size")), ("employees", "headcount", "staff"), ("{v} employees", "a team of {v}", "{v} staff"),
         say=say_int, verbatim=False),
    Kind("years_experience", "org", {"type": "integer", "minimum": 0, "maximum": 60}, _int(0, 25),
         (("years", "experience"), ("experience", "years"), ("experience",)), ("years of experience", "experience"),
         ("{v} years of experience", "with {v} years in the field", "experience: {v} years"), say=say_int, verbatim=False),
    _bool("remote", "org", (("remote",), ("is", "remote"), ("remote", "ok")), ("remote", "fully remote", "remote-friendly",
          "work from home possible"), ("on-site", "office-based", "not remote", "in the office only")),
    Kind("employee_id", "org", S, _code("E-#####"), (("employee", "id"), ("staff", "number"), ("badge",)), ("employee ID", "staff no."),
         ("employee ID {v}", "badge {v}")),
    # places
    Kind("street", "place", S, _street, (("street",), ("street", "address"), ("address", "line"), ("address",)),
         ("street", "address"), ("at {v}", "lives at {v}", "located at {v}", "{v}")),
    Kind("city", "place", S, lambda fk, rng: fk.city(), (("city",), ("town",), ("city", "name"), ("locality",)),
         ("city", "town"), ("in {v}", "based in {v}", "from {v}", "city of {v}", "near {v}")),
    _enum("state", "place", STATES, (("state",), ("region",), ("province",)), ("state", "region"), ("in {v}", "state of {v}")),
    Kind("postcode", "place", S, lambda fk, rng: fk.postcode(), (("zip",), ("zip", "code"), ("postcode",), ("postal", "code")),
         ("ZIP", "zip code", "postcode", "postal code"), ("ZIP {v}", "postcode {v}")),
    _enum("country", "place", COUNTRIES, (("country",), ("nation",), ("country", "name")), ("country",),
          ("in {v}", "from {v}", "based in {v}", "country: {v}")),
    Kind("venue", "place", S, lambda fk, rng: rng.choice([f"{fk.last_name()} Hall", f"The {fk.color_name()} Room",
         f"{fk.city()} Convention Center", f"{fk.last_name()} Park", f"Hotel {fk.last_name()}"]),
         (("venue",), ("location",), ("place",)), ("venue", "location", "place"), ("at {v}", "held at {v}", "venue: {v}")),
    Kind("latitude", "place", {"type": "number", "minimum": -90, "maximum": 90}, lambda fk, rng: num(round(rng.uniform(-80, 80), 4)),
         (("latitude",), ("lat",)), ("latitude", "lat"), ("latitude {v}",), verbatim=False),
    # dates and times
    Kind("date", "time", {"type": "string", "format": "date"}, _date(), (("date",), ("day",), ("event", "date")), ("date", "day"),
         ("on {v}", "dated {v}", "for {v}", "date: {v}"), say=say_date, verbatim=False),
    Kind("start_date", "time", {"type": "string", "format": "date"}, _date(), (("start", "date"), ("begin", "date"),
         ("from", "date")), ("start date", "start", "from"), ("starting {v}", "from {v}", "begins {v}", "start date {v}"),
         say=say_date, verbatim=False),
    Kind("end_date", "time", {"type": "string", "format": "date"}, _date(), (("end", "date"), ("until",), ("to", "date"), ("expiry",)),
         ("end date", "until", "ends"), ("until {v}", "ending {v}", "through {v}", "end date {v}"), say=say_date, verbatim=False),
    Kind("due_date", "time", {"type": "string", "format": "date"}, _date(), (("due", "date"), ("deadline",), ("due", "by")),
         ("due", "deadline", "due date"), ("due {v}", "deadline {v}", "by {v}", "no later than {v}"), say=say_date, verbatim=False),
    Kind("time", "time", {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}, _hm, (("time",), ("start", "time"), ("time", "of", "day"),
         ("starts", "at")), ("time", "start time"), ("at {v}", "starting at {v}", "from {v}", "time: {v}"),
         say=say_time, verbatim=False),
    Kind("datetime", "time", {"type": "string", "format": "date-time"}, _dt, (("timestamp",), ("date", "time"), ("scheduled", "at")),
         ("timestamp", "scheduled"), ("scheduled for {v}", "on {v}", "logged {v}"), say=lambda v, rng: say_date_time(v, rng),
         verbatim=False),
    _enum("weekday", "time", WEEKDAYS, (("weekday",), ("day", "of", "week")), ("day",), ("every {v}", "on {v}", "each {v}")),
    Kind("duration_minutes", "time", {"type": "integer", "minimum": 1}, _int(5, 240), (("duration", "minutes"), ("duration",),
         ("length", "min")), ("duration", "length"), ("lasts {v} minutes", "{v} min", "takes {v} minutes", "for {v} minutes"),
         say=say_int, verbatim=False),
    Kind("nights", "time", {"type": "integer", "minimum": 1, "maximum": 60}, _int(1, 14), (("nights",), ("number", "of", "nights"),
         ("stay", "nights")), ("nights",), ("for {v} nights", "{v} nights", "staying {v} nights"), say=say_int, verbatim=False),
    # money
    _money_kind("price", (("price",), ("unit", "price"), ("cost",), ("amount",)), ("price", "cost"), ("costs {v}",
                "priced at {v}", "for {v}", "price {v}", "at {v} each"), 1, 900),
    _money_kind("total", (("total",), ("total", "amount"), ("amount", "due"), ("grand", "total"), ("sum",)),
                ("total", "amount due", "grand total"), ("totalling {v}", "a total of {v}", "{v} in total", "amount due {v}"), 5, 5000),
    _money_kind("budget", (("budget",), ("max", "budget")), ("budget",), ("a budget of {v}", "up to {v}", "budget {v}"), 100, 20000),
    _money_kind("tax", (("tax",), ("vat",), ("tax", "amount")), ("tax", "VAT"), ("tax {v}", "plus {v} VAT"), 1, 400),
    _enum("currency", "money", list(CURRENCIES), (("currency",), ("currency", "code")), ("currency",),
          ("paid in {v}", "currency {v}", "in {v}")),
    Kind("discount_percent", "money", {"type": "integer", "minimum": 0, "maximum": 100}, _int(5, 60),
         (("discount",), ("discount", "percent"), ("percent", "off")), ("discount", "off"), ("{v} off", "gets {v} off",
         "discount of {v}"),
         say=lambda v, rng: rng.choice([f"{v}%", f"{v} percent", f"{v}%"]), verbatim=False),
    _enum("payment_method", "money", PAYMENT, (("payment", "method"), ("paid", "with"), ("payment",)), ("payment", "paid by"),
          ("paid by {v}", "paying with {v}", "payment via {v}")),
    _bool("paid", "money", (("paid",), ("is", "paid"), ("payment", "received")), ("paid", "payment received", "settled",
          "already paid"), ("unpaid", "not paid yet", "payment outstanding", "still open")),
    Kind("iban", "money", S, lambda fk, rng: fk.iban(), (("iban",), ("bank", "account")), ("IBAN", "account"),
         ("IBAN {v}", "transfer to {v}")),
    # products and quantities
    Kind("product", "product", S, _product, (("product",), ("item",), ("product", "name"), ("article",), ("model",)),
         ("product", "item", "model"), ("the {v}", "a {v}", "ordered the {v}", "item: {v}", "bought a {v}")),
    Kind("brand", "product", S, _pick(BRANDS), (("brand",), ("make",), ("manufacturer",)), ("brand", "make"),
         ("made by {v}", "from {v}", "brand {v}")),
    Kind("quantity", "product", {"type": "integer", "minimum": 0}, _int(1, 40), (("quantity",), ("qty",), ("count",), ("units",),
         ("amount",)), ("quantity", "qty", "units"), ("{v} units", "qty {v}", "{v} of them", "x{v}", "{v} pieces"),
         say=say_int, verbatim=False),
    Kind("weight_kg", "product", {"type": "number", "minimum": 0}, lambda fk, rng: num(round(rng.uniform(0.1, 80), 1)),
         (("weight", "kg"), ("weight",), ("mass",)), ("weight",), ("weighs {v} kg", "{v} kg", "weight {v}kg"), verbatim=False),
    _enum("color", "product", COLORS, (("color",), ("colour",), ("finish",)), ("color", "colour"), ("in {v}", "the {v} one", "colour {v}")),
    _enum("size", "product", SIZES, (("size",), ("clothing", "size")), ("size",), ("size {v}", "in {v}")),
    _enum("condition", "product", CONDITION, (("condition",), ("state",)), ("condition",), ("in {v} condition", "condition: {v}")),
    _enum("unit", "product", UNITS, (("unit",), ("uom",)), ("unit",), ("measured in {v}",)),
    _bool("in_stock", "product", (("in", "stock"), ("available",), ("availability",)), ("in stock", "available", "ready to ship"),
          ("out of stock", "sold out", "unavailable", "back-ordered")),
    _bool("gift_wrap", "product", (("gift", "wrap"), ("gift",)), ("gift-wrapped", "as a gift, wrapped"), ("no gift wrap",
          "no wrapping needed")),
    # codes and identifiers
    Kind("order_id", "code", S, lambda fk, rng: rng.choice([_code("#####")(fk, rng), _code("ORD-######")(fk, rng),
         _code("??-####")(fk, rng), _code("A#####")(fk, rng)]), (("order", "id"), ("order", "number"), ("order", "no"), ("reference",)),
         ("order", "order number", "order #", "ref"), ("order {v}", "order #{v}", "reference {v}")),
    Kind("invoice_number", "code", S, _code("INV-####-###"), (("invoice", "number"), ("invoice", "id"), ("invoice",)),
         ("invoice", "invoice no."), ("invoice {v}", "invoice number {v}")),
    Kind("ticket_id", "code", S, lambda fk, rng: rng.choice([_code("TCK-#####")(fk, rng), _code("#######")(fk, rng),
         _code("SR-####")(fk, rng)]), (("ticket", "id"), ("case", "number"), ("ticket",), ("case", "id")), ("ticket", "case"),
         ("ticket {v}", "case {v}", "case number {v}")),
    Kind("tracking_number", "code", S, _code("1Z###?##########"), (("tracking", "number"), ("tracking",), ("shipment", "id")),
         ("tracking", "tracking no."), ("tracking {v}", "tracked as {v}")),
    Kind("sku", "code", S, _code("??-###-??"), (("sku",), ("product", "code"), ("part", "number")), ("SKU", "part no."),
         ("SKU {v}", "part number {v}")),
    Kind("uuid", "code", {"type": "string", "format": "uuid"}, lambda fk, rng: str(fk.uuid4()), (("uuid",), ("id",), ("guid",)),
         ("ID", "UUID"), ("id {v}", "uuid {v}")),
    Kind("ip_address", "code", {"type": "string", "format": "ipv4"}, lambda fk, rng: fk.ipv4_public(),
         (("ip",), ("ip", "address"), ("host", "ip")), ("IP", "IP address"), ("from {v}", "IP {v}")),
    Kind("license_plate", "code", S, lambda fk, rng: fk.license_plate(), (("license", "plate"), ("plate",), ("registration",)),
         ("plate", "registration"), ("plate {v}", "registration {v}")),
    Kind("flight_number", "travel", S, _flight, (("flight", "number"), ("flight",), ("flight", "no")), ("flight",),
         ("flight {v}", "on {v}", "booked on {v}")),
    Kind("seat", "travel", S, lambda fk, rng: f"{rng.randint(1, 45)}{rng.choice('ABCDEF')}", (("seat",), ("seat", "number")),
         ("seat",), ("seat {v}", "sitting in {v}")),
    _enum("origin_airport", "travel", AIRPORTS, (("origin",), ("from",), ("departure", "airport")), ("from", "departing"),
          ("from {v}", "departing {v}", "leaving {v}")),
    _enum("destination_airport", "travel", AIRPORTS, (("destination",), ("to",), ("arrival", "airport")), ("to", "arriving"),
          ("to {v}", "arriving at {v}", "landing in {v}")),
    Kind("airline", "travel", S, _pick(CARRIERS), (("airline",), ("carrier",)), ("airline", "carrier"),
         ("with {v}", "flying {v}", "operated by {v}")),
    _enum("cabin_class", "travel", CABIN, (("cabin",), ("class",), ("fare", "class")), ("class", "cabin"),
          ("in {v}", "{v} class", "a {v} seat")),
    _enum("meal", "travel", MEALS, (("meal",), ("meal", "preference"), ("diet",)), ("meal", "diet"), ("{v} meal", "requests {v}")),
    _enum("room_type", "travel", ROOM, (("room", "type"), ("room",)), ("room",), ("a {v}", "{v} room", "room: {v}")),
    Kind("guests", "travel", {"type": "integer", "minimum": 1, "maximum": 20}, _int(1, 8), (("guests",), ("party", "size"),
         ("people",), ("travellers",)), ("guests", "people", "party of"), ("for {v} guests", "party of {v}", "{v} people"),
         say=say_int, verbatim=False),
    Kind("confirmation_code", "travel", S, _code("??????"), (("confirmation",), ("booking", "ref"), ("pnr",), ("confirmation", "code")),
         ("confirmation", "booking ref", "PNR"), ("confirmation {v}", "booking reference {v}")),
    # ratings and enums of many kinds
    Kind("rating", "rating", {"type": "integer", "minimum": 1, "maximum": 5}, _int(1, 5), (("rating",), ("stars",), ("score",)),
         ("rating", "stars"), ("{v} out of 5", "{v}/5", "{v} stars", "rated it {v}"), say=say_int, verbatim=False),
    Kind("score", "rating", {"type": "number", "minimum": 0, "maximum": 10}, lambda fk, rng: num(round(rng.uniform(0, 10), 1)),
         (("score",), ("grade",), ("mark",)), ("score",), ("scored {v}", "score {v}/10", "{v} out of 10"), verbatim=False),
    _enum("priority", "status", PRIORITIES, (("priority",), ("urgency",), ("prio",)), ("priority", "urgency"),
          ("{v} priority", "priority: {v}", "marked {v}")),
    _enum("severity", "status", SEVERITIES, (("severity",), ("impact",)), ("severity",), ("a {v} issue", "severity {v}")),
    _enum("ticket_status", "status", TICKET_STATUS, (("status",), ("state",), ("ticket", "status")), ("status",),
          ("currently {v}", "status: {v}", "now {v}")),
    _enum("order_status", "status", ORDER_STATUS, (("status",), ("order", "status"), ("delivery", "status")), ("status",),
          ("has been {v}", "is {v}", "status {v}")),
    _enum("shipping_method", "status", SHIPPING, (("shipping",), ("shipping", "method"), ("delivery",)), ("shipping", "delivery"),
          ("{v} shipping", "via {v} delivery")),
    _enum("sentiment", "status", SENTIMENT, (("sentiment",), ("tone",), ("mood",)), ("sentiment", "tone"), ("the tone is {v}",)),
    _enum("genre", "misc", GENRES, (("genre",), ("music", "genre"), ("style",)), ("genre",), ("a {v} concert", "{v} music")),
    _enum("cuisine", "misc", CUISINES, (("cuisine",), ("food", "type")), ("cuisine",), ("{v} food", "a {v} restaurant")),
    _enum("difficulty", "misc", DIFFICULTY, (("difficulty",), ("level",)), ("difficulty",), ("{v} to make", "difficulty: {v}")),
    Kind("servings", "misc", {"type": "integer", "minimum": 1, "maximum": 24}, _int(1, 12), (("servings",), ("serves",),
         ("portions",), ("yield",)), ("serves", "servings", "portions"), ("serves {v}", "makes {v} portions", "{v} servings"),
         say=say_int, verbatim=False),
    Kind("calories", "misc", {"type": "integer", "minimum": 0}, _int(50, 1200), (("calories",), ("kcal",), ("energy",)),
         ("calories", "kcal"), ("{v} kcal", "{v} calories"), say=say_int, verbatim=False),
    _list("ingredients", "misc", INGREDIENTS, (("ingredients",), ("needs",)), ("ingredients", "you need"), 2, 5),
    _list("tags", "misc", TAGS, (("tags",), ("labels",), ("categories",)), ("tags", "labels"), 1, 3),
    _list("symptoms", "medical", SYMPTOMS, (("symptoms",), ("complaints",)), ("symptoms", "complains of"), 1, 3),
    Kind("doctor", "medical", S, lambda fk, rng: f"Dr. {fk.last_name()}", (("doctor",), ("physician",), ("provider",)),
         ("doctor", "physician"), ("with {v}", "seen by {v}", "{v} will see you")),
    Kind("medication", "medical", S, _pick(["ibuprofen", "amoxicillin", "metformin", "lisinopril", "atorvastatin",
         "omeprazole", "cetirizine", "paracetamol", "prednisone", "levothyroxine"]), (("medication",), ("drug",), ("prescription",)),
         ("medication", "prescribed"), ("prescribed {v}", "takes {v}", "on {v}")),
    Kind("dosage_mg", "medical", {"type": "integer", "minimum": 1}, lambda fk, rng: rng.choice([5, 10, 20, 25, 50, 100, 200, 250, 400, 500]),
         (("dosage", "mg"), ("dose",), ("dosage",)), ("dose", "dosage"), ("{v} mg", "{v}mg dose"), verbatim=False),
    _bool("fasting_required", "medical", (("fasting",), ("fasting", "required")), ("fasting required", "no food beforehand"),
          ("no fasting needed", "eat normally before")),
    _bool("newsletter", "misc", (("newsletter",), ("subscribe",), ("marketing", "opt", "in")), ("subscribed to the newsletter",
          "opted in to emails"), ("no newsletter", "opted out of emails")),
    _bool("confirmed", "status", (("confirmed",), ("is", "confirmed")), ("confirmed", "is confirmed", "locked in"),
          ("not confirmed yet", "tentative", "unconfirmed")),
    _bool("online", "misc", (("online",), ("virtual",), ("is", "online")), ("online", "virtual", "over video call"),
          ("in person", "on site", "in-person")),
    _bool("pets_allowed", "travel", (("pets", "allowed"), ("pet", "friendly")), ("pets allowed", "pet-friendly"),
          ("no pets", "pets not allowed")),
    Kind("note", "misc", S, lambda fk, rng: fk.sentence(nb_words=rng.randint(3, 7)).rstrip("."), (("note",), ("comment",),
         ("remarks",), ("message",)), ("note", "comment"), ('note: "{v}"', 'the comment was "{v}"')),
]
BY_NAME = {k.name: k for k in POOL}
assert len(BY_NAME) == len(POOL), "duplicate kind names"

# Objects that nest: a parent field name and the kinds inside it (a sub-record of the pool).
GROUPS: dict[str, tuple[tuple, tuple[str, ...]]] = {
    "address": ((("address",), ("location",), ("shipping", "address"), ("billing", "address"), ("home", "address")),
                ("street", "city", "state", "postcode", "country")),
    "contact": ((("contact",), ("contact", "info"), ("contact", "details")), ("person_name", "email", "phone")),
    "customer": ((("customer",), ("client",), ("buyer",)), ("person_name", "email", "phone", "city")),
    "employer": ((("employer",), ("company",), ("organisation",)), ("company", "city", "employees", "website")),
    "flight": ((("flight",), ("outbound",), ("return", "flight")), ("airline", "flight_number", "origin_airport",
                                                                   "destination_airport", "date", "time")),
    "payment": ((("payment",), ("billing",)), ("total", "currency", "payment_method", "paid")),
    "appointment": ((("appointment",), ("visit",), ("booking",)), ("date", "time", "doctor", "duration_minutes")),
}
# Arrays of objects: a field name and the kinds of each item.
ITEM_GROUPS: dict[str, tuple[tuple, tuple[str, ...]]] = {
    "items": ((("items",), ("line", "items"), ("products",), ("order", "lines")), ("product", "quantity", "price")),
    "passengers": ((("passengers",), ("travellers",)), ("person_name", "seat", "meal")),
    "attendees": ((("attendees",), ("participants",), ("guests",)), ("person_name", "email")),
    "contacts": ((("contacts",), ("people",)), ("person_name", "job_title", "phone")),
    "medications": ((("medications",), ("prescriptions",)), ("medication", "dosage_mg")),
}
