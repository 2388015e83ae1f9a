"""Fill pydantic forms and JSON Schemas from text: every result is valid, in a few parallel steps.

    python examples/fill_form.py
"""
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

import steerdiff as sd

model = sd.load_model()  # the embedded default model, offline


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    email: str | None = None
    role: Literal["admin", "user"]


texts = ["Maria Lopez, 34, maria@example.org, signs in as a user.",
         "Our new admin is Tom Berg (52); reach him at tom.berg@example.com."]
for person in sd.fill(model, Person, texts):  # one batch; each result is a Person
    print(repr(person))

event_schema = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "event.json").read_text())
event = sd.fill(model, event_schema, "The harvest fair opens on 2026-09-12 at 10:30 in Springfield.")
print(json.dumps(event))  # a dict, valid against the schema (checked with python-jsonschema)
