"""Open-ended extraction tasks: random schemas from the field pool (``fields.py``), texts in many shapes.

``make_task(fk, rng)`` returns ``{"schema", "text", "expected", "shape", "kinds", "keys"}``:

* the schema: 2-7 top-level fields drawn from the pool (a theme of one or two kind groups plus strays), key
  names from the kinds' synonyms in one casing (``org_name``, ``orgName``, ``OrgName``, ``orgname``,
  ``org-name``), sometimes a nested object (``GROUPS``: address, contact, flight, ...) and an array of objects
  (``ITEM_GROUPS``: line items, passengers, ...); list kinds are arrays of strings;
* fields the text does not mention: either optional and omitted from ``expected``, or required and nullable
  (``"type": [t, "null"]``) with ``null`` in ``expected``, as the schema says;
* the text in one of ``SHAPES``: running prose (clauses in any order), a bullet list, a letter, an email, key-value
  lines, a table (markdown or CSV), a chat, a terse note; with distractor values of the same kind that are not the
  answer ("previously X", "not X"), and now and then a line of unrelated chatter.

``expected`` keys follow the schema's ``properties`` order (the order ``sd.fill`` writes). ``to_json`` gives the
compact training target. ``build_open_dataset`` mixes these tasks with plain text (``text.py``) and is reproducible
from its seed.
"""
from __future__ import annotations

import json
import random

from faker import Faker

from .fields import BY_NAME, GROUPS, ITEM_GROUPS, POOL, Kind

STYLES = ("snake", "camel", "pascal", "lower", "kebab", "snake", "camel")
SHAPES = ("prose", "prose", "prose", "list", "letter", "email", "kv", "kv", "table", "chat", "note")
GROUP_NAMES = sorted({k.group for k in POOL})
CHATTER = ["Thanks in advance.", "Let me know if anything changes.", "Sent from my phone.", "Hope you are well.",
           "Sorry for the late reply.", "Have a great weekend!", "Please keep this on file.", "More to follow.",
           "Cheers.", "Call me if you have questions.", "See the details below.", "Quick one from me today."]
SUBJECTS = ["She", "He", "The client", "Our contact", "The applicant", "The customer", "This person"]
THINGS = ["It", "This", "The request", "The booking", "The order", "Everything"]
# clause templates by their first word: a verb takes a subject ("She works at ..."); a participle, adjective or
# preposition takes a subject and "is" ("It is priced at ..."); anything else is written as a fragment ("Invoice X.")
VERBS = {"works", "is", "was", "lives", "joined", "pays", "costs", "lasts", "takes", "weighs", "scored", "rated", "ordered",
         "bought", "requests", "logs", "speaks", "wrote", "has", "makes", "serves", "gets", "begins", "complains"}
COPULA = {"reachable", "employed", "based", "aged", "hired", "priced", "paid", "made", "located", "scheduled", "dated",
          "marked", "seen", "operated", "sitting", "staying", "arriving", "departing", "leaving", "landing", "flying",
          "starting", "ending", "totalling", "currently", "now", "in", "at", "on", "for", "from", "with", "via", "by", "to",
          "until", "through", "near", "up", "each", "every", "no", "a", "part", "looking", "booked", "tracked", "prescribed",
          "paying", "held", "logged", "online", "measured", "requests", "sitting"}
PERSONAL = {"person", "contact", "org", "medical"}


def key_name(words: tuple, style: str) -> str:
    w = [x.lower() for x in words]
    if style == "snake":
        return "_".join(w)
    if style == "camel":
        return w[0] + "".join(x.capitalize() for x in w[1:])
    if style == "pascal":
        return "".join(x.capitalize() for x in w)
    if style == "kebab":
        return "-".join(w)
    return "".join(w)


def to_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


# --------------------------------------------------------------------------------------------------
# Schema composition
# --------------------------------------------------------------------------------------------------
class _Field:
    """One schema property: its key, kind (or sub-fields), value, and whether the text mentions it."""

    def __init__(self, key, label, kind=None, sub=None, items=None, value=None):
        self.key, self.label, self.kind, self.sub, self.items, self.value = key, label, kind, sub, items, value
        self.present = True
        self.distractor = None


def _pick_kinds(rng: random.Random, n: int, exclude=()) -> list[Kind]:
    theme = rng.sample(GROUP_NAMES, 2)
    chosen: list[Kind] = []
    seen_labels: set[str] = set()
    pool = [k for k in POOL if k.name not in exclude]
    tries = 0
    while len(chosen) < n and tries < 200:
        tries += 1
        cands = [k for k in pool if k.group in theme] if rng.random() < 0.65 else pool
        k = rng.choice(cands)
        if k in chosen or set(k.labels) & seen_labels:
            continue
        chosen.append(k)
        seen_labels |= set(k.labels)
    return chosen


def _unique_key(kind_names: tuple, style: str, used: set, rng: random.Random) -> str | None:
    opts = list(kind_names)
    rng.shuffle(opts)
    for words in opts:
        k = key_name(words, style)
        if k not in used:
            used.add(k)
            return k
    return None


def _text_label(key_words: tuple, kind: Kind, rng: random.Random) -> str:
    """The word a text uses for a field: the key's own words or one of the kind's labels."""
    return " ".join(key_words) if (rng.random() < 0.45 or not kind.labels) else rng.choice(kind.labels)


def _scalar(kind: Kind, fk: Faker, rng: random.Random, style: str, used: set, taken_values: dict) -> _Field | None:
    words = rng.choice(kind.names)
    key = key_name(words, style)
    if key in used:
        key = _unique_key(kind.names, style, used, rng)
        if key is None:
            return None
        words = next(w for w in kind.names if key_name(w, style) == key)
    else:
        used.add(key)
    v = kind.sample(fk, rng)
    for _ in range(5):  # two fields of one kind (start and end, origin and destination) get different values
        if to_json(v) not in taken_values.get(kind.group, set()):
            break
        v = kind.sample(fk, rng)
    taken_values.setdefault(kind.group, set()).add(to_json(v))
    return _Field(key, _text_label(words, kind, rng), kind=kind, value=v)


def make_schema(fk: Faker, rng: random.Random) -> tuple[dict, list[_Field]]:
    """A random schema and its fields (values sampled, presence and nullability decided)."""
    style = rng.choice(STYLES)
    used: set[str] = set()
    taken: dict = {}
    fields: list[_Field] = []
    n = rng.randint(2, 7)
    for kind in _pick_kinds(rng, n):
        f = _scalar(kind, fk, rng, style, used, taken)
        if f:
            fields.append(f)
    if rng.random() < 0.25:  # a nested object
        gname = rng.choice(list(GROUPS))
        names, kinds = GROUPS[gname]
        key = _unique_key(names, style, used, rng)
        if key:
            k = [BY_NAME[x] for x in kinds]
            sub_kinds = [x for x in k if rng.random() < 0.75] or k[:2]
            sub_used: set[str] = set()
            sub = [f for f in (_scalar(x, fk, rng, style, sub_used, taken) for x in sub_kinds) if f]
            words = next(w for w in names if key_name(w, style) == key)
            fields.insert(rng.randint(0, len(fields)), _Field(key, " ".join(words), sub=sub))
    if rng.random() < 0.2:  # an array of objects
        gname = rng.choice(list(ITEM_GROUPS))
        names, kinds = ITEM_GROUPS[gname]
        key = _unique_key(names, style, used, rng)
        if key:
            k = [BY_NAME[x] for x in kinds]
            sub_used = set()
            first = [_scalar(x, fk, rng, style, sub_used, taken) for x in k]
            rows = [first]
            for _ in range(rng.randint(0, 2)):  # more rows: the same keys and labels, new values
                rows.append([_Field(f.key, f.label, kind=f.kind, value=f.kind.sample(fk, rng)) for f in first])
            words = next(w for w in names if key_name(w, style) == key)
            fields.append(_Field(key, " ".join(words), items=rows))
    # presence and nullability
    nullable_style = rng.random() < 0.4  # this schema writes absent fields as null (required + nullable)
    for f in fields:
        f.present = rng.random() < 0.82 or len(fields) == 1
        if f.sub:
            for s in f.sub:
                s.present = rng.random() < 0.85
            if not any(s.present for s in f.sub):
                f.sub[0].present = True
    if all(not f.present for f in fields):
        fields[0].present = True
    props, required = {}, []
    for f in fields:
        nullable = nullable_style and (not f.present or rng.random() < 0.2)
        props[f.key] = _field_schema(f, nullable, nullable_style, rng)
        if f.present and rng.random() < 0.6 or nullable:
            required.append(f.key)
    schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    if rng.random() < 0.3:
        schema["additionalProperties"] = False
    return schema, fields


def _nullable(s: dict) -> dict:
    s = dict(s)
    t = s.get("type")
    s["type"] = [t, "null"] if isinstance(t, str) else t
    if "enum" in s:
        s["enum"] = list(s["enum"]) + [None]
    return s


def _field_schema(f: _Field, nullable: bool, nullable_style: bool, rng: random.Random) -> dict:
    if f.kind is not None:
        s = dict(f.kind.schema)
    elif f.sub is not None:
        s = {"type": "object", "properties": {x.key: (_nullable(x.kind.schema) if nullable_style and not x.present
                                                     else dict(x.kind.schema)) for x in f.sub}}
        req = [x.key for x in f.sub if (x.present and rng.random() < 0.6) or (nullable_style and not x.present)]
        if req:
            s["required"] = req
    else:
        row = f.items[0]
        s = {"type": "array", "items": {"type": "object", "properties": {x.key: dict(x.kind.schema) for x in row},
                                        "required": [x.key for x in row]}}
    return _nullable(s) if nullable else s


def expected_of(fields: list[_Field], schema: dict) -> dict:
    """The answer: present fields' values; absent ones null where the schema requires them (nullable), else omitted."""
    out = {}
    req = set(schema.get("required", []))
    for f in fields:
        if not f.present:
            if f.key in req:
                out[f.key] = None
            continue
        if f.kind is not None:
            out[f.key] = f.value
        elif f.sub is not None:
            sreq = set(schema["properties"][f.key].get("required", []))
            sub = {}
            for x in f.sub:
                if x.present:
                    sub[x.key] = x.value
                elif x.key in sreq:
                    sub[x.key] = None
            out[f.key] = sub
        else:
            out[f.key] = [{x.key: x.value for x in row} for row in f.items]
    return out


# --------------------------------------------------------------------------------------------------
# Text rendering
# --------------------------------------------------------------------------------------------------
def _facts(fields: list[_Field], rng: random.Random) -> list[tuple[str, str, Kind | None, object]]:
    """``(label, surface, kind, field)`` for every value the text states, nested ones flattened (address parts
    may be one line)."""
    out = []
    for f in fields:
        if not f.present:
            continue
        if f.kind is not None:
            out.append((f.label, f.kind.surface(f.value, rng), f.kind, f))
        elif f.sub is not None:
            parts = [x for x in f.sub if x.present]
            if all(x.kind.group == "place" for x in parts) and rng.random() < 0.6:
                out.append((f.label, ", ".join(x.kind.surface(x.value, rng) for x in parts), None, f))
            else:
                for x in parts:
                    out.append((f"{f.label} {x.label}" if rng.random() < 0.3 else x.label, x.kind.surface(x.value, rng),
                                x.kind, x))
        else:  # rows stay in order, as one fact
            rows = []
            for row in f.items:
                rows.append(", ".join(f"{x.label} {x.kind.surface(x.value, rng)}" if rng.random() < 0.6 or not x.kind.verbatim
                                      else x.kind.surface(x.value, rng) for x in row))
            out.append((f.label, rng.choice(["; ", " and ", " | "]).join(f"({r})" if len(rows) > 1 else r for r in rows),
                        None, f))
    rng.shuffle(out)
    return out


def _distractors(fields: list[_Field], fk: Faker, rng: random.Random) -> list[tuple[str, str]]:
    """``(label, surface)`` of same-kind values that are not the answer (at most two)."""
    out = []
    for f in fields:
        if f.present and f.kind is not None and f.kind.schema.get("type") != "boolean" and rng.random() < 0.18:
            for _ in range(4):
                d = f.kind.sample(fk, rng)
                if to_json(d) != to_json(f.value):
                    out.append((f.label, f.kind.surface(d, rng)))
                    break
        if len(out) >= 2:
            break
    return out


def _distractor_sentence(label: str, d: str, rng: random.Random, v: str | None = None) -> str:
    return rng.choice([f"The {label} used to be {d}, but that has changed.", f"Please ignore the old {label} ({d}).",
                       f"Note: {d} is no longer the {label}.", f"(An earlier message gave {d} as the {label}; that was wrong.)",
                       f"Not {d}, as I wrote before.", f"{_cap(label)} was previously {d}."])


def _sentence(label: str, surface: str, kind: Kind | None, rng: random.Random) -> str:
    if kind is not None and kind.schema.get("type") == "boolean":
        return rng.choice([f"{rng.choice(THINGS)} is {surface}.", f"{_cap(label)}: {surface}.", f"{_cap(surface)}."])
    if kind is not None and kind.clauses and rng.random() < 0.6:
        tpl = rng.choice(kind.clauses)
        c = tpl.format(v=surface, l=label)
        first = tpl.split(" ")[0]
        subj = rng.choice(SUBJECTS if kind.group in PERSONAL else THINGS)
        if first in VERBS:
            return f"{subj} {c}."
        if first in COPULA:
            return f"{subj} is {c}."
        return (c if tpl.startswith("{v}") else _cap(c)) + "."  # a value keeps its case
    return rng.choice([f"The {label} is {surface}.", f"{_cap(label)}: {surface}.", f"{surface} is the {label}.",
                       f"As for the {label}, it's {surface}.", f"Their {label} is {surface}.", f"{_cap(label)} - {surface}."])


def _prose(facts, dis, rng) -> str:
    sents = [_sentence(lab, sur, k, rng) for lab, sur, k, _ in facts]
    sents += [_distractor_sentence(lab, d, rng) for lab, d in dis]
    rng.shuffle(sents)
    if rng.random() < 0.3:  # merge some neighbours into one sentence
        i = rng.randrange(len(sents))
        if i + 1 < len(sents):
            a, b = sents[i].rstrip("."), sents[i + 1]
            first = b.split(" ")[0]
            low = first in ("She", "He", "The", "It", "This", "Their", "Our", "Everything", "All", "As")
            sents[i: i + 2] = [a + rng.choice([", and ", "; ", " - "]) + (b[:1].lower() + b[1:] if low else b)]
    return " ".join(sents)


def _kv(facts, dis, rng) -> str:
    sep = rng.choice([": ", ": ", " - ", " = ", ":\t", " | "])
    case = rng.choice([_cap, str.upper, lambda s: s, _cap])
    lines = [f"{case(lab)}{sep}{sur}" for lab, sur, _, _ in facts]
    lines += [f"{case('old ' + lab)}{sep}{d}" for lab, d in dis]
    rng.shuffle(lines)
    if rng.random() < 0.25:
        return " | ".join(lines) if sep != " | " else "; ".join(lines)
    return "\n".join(lines)


def _list(facts, dis, rng) -> str:
    bullet = rng.choice(["- ", "* ", "• ", ""])
    numbered = rng.random() < 0.2
    lines = [f"{_cap(lab)}: {sur}" if rng.random() < 0.8 else f"{sur} ({lab})" for lab, sur, _, _ in facts]
    lines += [f"{_cap(lab)}: {d} (cancelled)" for lab, d in dis]
    rng.shuffle(lines)
    head = rng.choice(["", "Details:\n", "Summary\n", "Here is what we have:\n", "To do:\n"])
    return head + "\n".join(f"{i + 1}. {x}" if numbered else bullet + x for i, x in enumerate(lines))


def _table(facts, dis, rng) -> str:
    """One row of the scalar fields (markdown or CSV); an array of objects as a table of its own, a row per item."""
    items = [f for _, _, _, f in facts if getattr(f, "items", None)]
    facts = [x for x in facts if not getattr(x[3], "items", None)]
    md = rng.random() < 0.6
    q = lambda s: f'"{s}"' if "," in s else s  # noqa: E731

    def table(labs, rows):
        if md:
            return "\n".join(["| " + " | ".join(labs) + " |", "|" + "---|" * len(labs)] +
                             ["| " + " | ".join(r) + " |" for r in rows])
        return "\n".join(",".join(q(x) for x in r) for r in [labs] + rows)

    parts = [table([_cap(lab) for lab, _, _, _ in facts], [[sur for _, sur, _, _ in facts]])] if facts else []
    for f in items:
        labs = [_cap(x.label) for x in f.items[0]]
        parts.append(f"{_cap(f.label)}:\n" + table(labs, [[x.kind.surface(x.value, rng) for x in row] for row in f.items]))
    return "\n\n".join(parts) + "".join(f"\n(old {lab}: {d})" for lab, d in dis)


def _chat(facts, dis, rng) -> str:
    a, b = rng.choice([("Agent", "Customer"), ("Support", "Me"), ("Bot", "User"), ("Dana", "Sam"), ("Reception", "Caller")])
    lines = [f"{b}: {rng.choice(['Hi!', 'Hello,', 'Hey there.', 'Good morning.'])} {rng.choice(['I need some help.', 'Quick question.', 'I want to book something.', 'Following up.'])}"]
    for lab, sur, k, _ in facts:
        if rng.random() < 0.6:
            lines.append(f"{a}: {rng.choice(['What is the', 'Could you tell me the', 'And the', 'Can I get your'])} {lab}?")
            lines.append(f"{b}: {rng.choice(['', 'Sure, ', 'It is ', 'Yes - '])}{sur}")
        else:
            lines.append(f"{b}: {_sentence(lab, sur, k, rng)}")
    for lab, d in dis:
        lines.append(f"{b}: Oh wait, not {d} - ignore that {lab}.")
    lines.append(f"{a}: {rng.choice(['Thanks, noted.', 'Got it.', 'Perfect, all set.', 'Thank you!'])}")
    return "\n".join(lines)


def _letter(facts, dis, rng, fields) -> str:
    body = _prose(facts, dis, rng)
    sign = next((f.value for f in fields if f.present and f.kind is not None and f.kind.name == "person_name"), None)
    greet = rng.choice(["Dear Sir or Madam,", "Hello team,", "Hi there,", "To whom it may concern,", "Dear colleagues,"])
    close = rng.choice(["Best regards,", "Kind regards,", "Sincerely,", "Thanks,", "Warmly,"])
    return f"{greet}\n\n{body}\n\n{close}" + (f"\n{sign}" if sign else "")


def _email(facts, dis, rng, fields, fk) -> str:
    subj = rng.choice(["Request", "Update", "Booking", "Order question", "Follow-up", "Information", "Re: your message"])
    frm = next((f.value for f in fields if f.present and f.kind is not None and f.kind.name == "email"), None)
    head = f"Subject: {subj}\n" if frm is None else f"From: {frm}\nSubject: {subj}\n"
    return head + "\n" + _letter(facts, dis, rng, fields)


def _note(facts, dis, rng) -> str:
    sep = rng.choice(["; ", ", ", " / ", " -- "])
    parts = [f"{lab} {sur}" if rng.random() < 0.7 else f"{sur}" if (k is not None and not k.verbatim and
             k.schema.get("type") == "boolean") else f"{lab}: {sur}" for lab, sur, k, _ in facts]
    parts += [f"(not {d})" for _, d in dis]
    rng.shuffle(parts)
    return rng.choice(["Note: ", "NB ", "memo - ", "", "todo: "]) + sep.join(parts)


_RENDERERS = {"prose": _prose, "kv": _kv, "list": _list, "table": _table, "chat": _chat, "letter": _letter,
              "email": _email, "note": _note}


def render(fields: list[_Field], fk: Faker, rng: random.Random, shape: str | None = None) -> tuple[str, str]:
    """``(text, shape)`` stating every present field (and the distractors) in a shape from ``SHAPES``."""
    shape = shape or rng.choice(SHAPES)
    facts = _facts(fields, rng)
    dis = _distractors(fields, fk, rng)
    if shape not in _RENDERERS:
        raise ValueError(f"unknown text shape {shape!r}; choose one of {sorted(set(SHAPES))}")
    extra = {"letter": (fields,), "email": (fields, fk)}.get(shape, ())  # the two shapes that greet someone
    text = _RENDERERS[shape](facts, dis, rng, *extra)
    if rng.random() < 0.15:
        text = rng.choice(CHATTER) + ("\n" if "\n" in text else " ") + text
    if rng.random() < 0.15:
        text = text + ("\n" if "\n" in text else " ") + rng.choice(CHATTER)
    return text, shape


def make_task(fk: Faker, rng: random.Random, shape: str | None = None) -> dict:
    """One extraction task: ``{"schema", "text", "expected", "shape", "kinds", "keys"}`` (see the module docstring)."""
    schema, fields = make_schema(fk, rng)
    text, shape = render(fields, fk, rng, shape)
    kinds = []
    for f in fields:
        kinds += [f.kind.name] if f.kind else [x.kind.name for x in (f.sub or [c for row in f.items for c in row])]
    return {"schema": schema, "text": text, "expected": expected_of(fields, schema), "shape": shape, "kinds": kinds,
            "keys": [f.key for f in fields], "verbatim": _verbatim_values(fields)}


def _verbatim_values(fields: list[_Field]) -> list[str]:
    """String values the text must contain as written (kinds with ``verbatim``, present)."""
    out = []
    for f in fields:
        if not f.present:
            continue
        if f.kind is not None:
            group = [f]
        elif f.sub is not None:
            group = [x for x in f.sub if x.present]
        else:
            group = [x for row in f.items for x in row]
        out += [x.value for x in group if x.kind.verbatim and isinstance(x.value, str)]
    return out


# --------------------------------------------------------------------------------------------------
# The mix
# --------------------------------------------------------------------------------------------------
def open_example(fk: Faker, rng: random.Random) -> dict:
    t = make_task(fk, rng)
    return {"kind": "open", "prompt": t["text"], "canvas": [to_json(t["expected"])]}


def build_open_dataset(n: int = 200_000, seed: int = 0, mix=(0.75, 0.05, 0.2)) -> dict:
    """``n`` examples: open extraction tasks / template fill / plain WordNet text in proportions ``mix``, in the
    format of ``data.build_dataset`` (``{"kind", "prompt", "canvas"}``); reproducible from ``seed``. Without
    WordNet its share goes to extraction."""
    from .text import fill_example, plain_example, review, wordnet_sentences

    rng = random.Random(seed)
    fk = Faker(["en_US", "en_GB", "en_IE", "en_AU"])
    fk.seed_instance(seed)
    wn = wordnet_sentences()
    n_plain = int(n * mix[2]) if wn else 0
    n_fill = int(n * mix[1])
    n_ext = n - n_plain - n_fill
    ex = [open_example(fk, rng) for _ in range(n_ext)]
    ex += [fill_example(review(rng), rng) for _ in range(n_fill)]
    ex += [plain_example(rng.choice(wn), rng) for _ in range(n_plain)]
    rng.shuffle(ex)
    sizes = {"extraction": n_ext, "copy": 0, "fill": n_fill, "plain": n_plain, "total": len(ex),
             "wordnet_sentences_available": len(wn),
             "chars": sum(len(e["prompt"]) + sum(len(s) for s in e["canvas"] if isinstance(s, str)) for e in ex)}
    return {"examples": ex, "sizes": sizes}
