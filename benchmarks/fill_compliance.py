"""Compliance through ``sd.fill`` itself on schemas the fill path covers: every output must validate.

    python -m benchmarks.fill_compliance --ids FILE [--seeds 2] [--seconds 60]

Runs ``schema_coverage.fallback_compliance`` (a tiny random-weight model, ``sd.fill`` with its own validation by
python-jsonschema with format checks; a ``ValidationFailed`` is an engine bug) on the JSONSchemaBench schemas
named in FILE (one id a line; e.g. the schemas a change newly covers), whichever engine ``fill`` picks. Prints
and writes benchmarks/results/fill_compliance.json. A random model tests the engine, not extraction quality.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.schema_coverage import DATA, fallback_compliance

OUT = Path(__file__).resolve().parent / "results" / "fill_compliance.json"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ids", type=Path, required=True, help="a file of JSONSchemaBench schema ids, one a line")
    ap.add_argument("--seeds", type=int, default=2, help="fill runs per schema (seed 0 greedy, then sampled)")
    ap.add_argument("--seconds", type=int, default=60, help="seconds per fill run (a timeout is counted)")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    want = set(a.ids.read_text().split())
    items = []
    for f in sorted((DATA / "jsonschemabench" / "schemas").glob("*.json")):
        items += [(it["id"], it["schema"]) for it in json.loads(f.read_text())["items"] if it["id"] in want]
    missing = want - {i for i, _ in items}
    if missing:
        ap.error(f"--ids: {len(missing)} ids not in the public set, e.g. {sorted(missing)[:3]}")
    t0 = time.time()
    out = fallback_compliance(items, seeds=a.seeds, seconds=a.seconds)
    out["seconds"] = round(time.time() - t0)
    print(f"fill on {out['schemas']} schemas, {out['runs']} runs: {out['valid']} valid, {len(out['invalid'])} invalid, "
          f"{len(out['errors'])} errors, {out['timeouts']} timeouts, {out['seconds']} s")
    for x in out["invalid"] + out["errors"]:
        print("  ", x)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
