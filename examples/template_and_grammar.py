"""A template with fixed spans and constrained holes, and a lark grammar.

    python examples/template_and_grammar.py
"""
from pathlib import Path

import steerdiff as sd

model = sd.load_model()  # the embedded default model, offline

# fixed text stays byte-identical; each hole has a token budget and may end early (padding is stripped)
tpl = sd.Template("Dear {{name:6}}, your order {{id:8}} ships on {{date:8}}.",
                  slots={"id": sd.Regex(r"#[0-9]{5}"), "date": sd.Regex(r"2026-[01][0-9]-[0-3][0-9]")})
out = sd.generate(model, "Order confirmation for Ana Silva", length=40, steps=10, constraints=[tpl], seed=0)
print(out.text)
print(out.fields)

# every output parses with lark's own parser for this grammar
calc = (Path(__file__).resolve().parents[1] / "schemas" / "calc.lark").read_text()
out = sd.generate(model, "An arithmetic expression:", length=16, steps=8, constraints=[sd.Grammar(calc)], seed=0)
print(out.text, f"({out.forward_passes} forward passes)")
