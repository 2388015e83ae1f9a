"""``steerdiff demo``: fill a pydantic form and rewrite a template with the embedded default model."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

PARAGRAPH = "Maria Lopez, 34, maria@example.org, signs in as a user."
TEMPLATE = "The food was [[cold and bland]] and the staff [[ignored us]]."


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=130)
    email: str | None = None
    role: Literal["admin", "user"]


def run_demo(model_path: str | None = None, device: str = "cpu") -> int:
    import steerdiff as sd

    t0 = time.perf_counter()
    model = sd.load_model(model_path, device=device)
    t_load = time.perf_counter() - t0
    print(f"model: {model.name} ({model.family}, loaded in {t_load:.2f} s)\n")

    print("1. fill a pydantic form (extractive: values are copied from the text, as sd.fill(..., extract=True))")
    print(f"   text:   {PARAGRAPH}")
    t1 = time.perf_counter()
    from .fill import COPY_SCALE, canvas_length

    constraint = sd.constraint_types()["json_schema"][0](Person, extract_from=PARAGRAPH)
    length = canvas_length(model, constraint, len(model.prompt_ids(PARAGRAPH)))
    guidance = [sd.CopyGuidance(scale=COPY_SCALE)] if COPY_SCALE else None  # as sd.fill does by default
    res = sd.generate(model, PARAGRAPH, length=length, steps=max(1, length // 4), constraints=[constraint], guidance=guidance)
    person = res.value if isinstance(res.value, Person) else Person.model_validate(res.value)
    t_fill = time.perf_counter() - t1
    print(f"   result: {person!r}")
    print(f"   canvas {len(res.token_ids)} tokens, {res.steps} steps, {res.forward_passes} forward passes, {t_fill:.2f} s\n")

    print("2. rewrite a template toward positive (fixed text kept byte-identical)")
    print(f"   template: {TEMPLATE}")
    t2 = time.perf_counter()
    guide = sd.constraint_types()["classifier"][0]("sentiment", target="positive", scale=3.0)
    out = sd.rewrite(model, TEMPLATE, guidance=[guide], seed=0)
    t_rw = time.perf_counter() - t2
    print(f"   result:   {out.text}")
    print(f"   {out.forward_passes} forward passes, {t_rw:.2f} s\n")
    print(f"total {time.perf_counter() - t0:.2f} s")
    return 0
