"""Issue 23 item 4, combinators: the JSONSchemaBench schemas that fill's compile path refused as oneOf, not,
allOf, uniqueItems, if or dependencies before this work, re-measured through fill's own path.

    python -m benchmarks.issue23_combinators [--fill-timeout 30] [--ids FILE]

Runs ``benchmarks.schema_coverage.fill_path_coverage`` (SmolLM2's tokenizer, a forked child per schema, a time
limit each) on those ids and writes benchmarks/results/issue23_combinators.json: per schema the refusal before
(``BEFORE``: benchmarks/results/schema_coverage.json at main 02a44a7) and the result now, the ids gained and
lost, and the refusals left by keyword. It never writes schema_coverage.json.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from benchmarks.schema_coverage import fill_path_coverage

OUT = Path(__file__).resolve().parent / "results" / "issue23_combinators.json"

# fill_path.per_schema[id]["kw"] at main 02a44a7 (785/925 through fill's path)
BEFORE = {
    "oneOf": ["ansible", "bundleconfig", "machine.schema", "o10020", "o11666", "o12453", "o21840", "o39084", "o39449",
              "o48661", "o62895", "o62897", "o62899", "o65975", "o69900", "o75109", "o77340", "o78057", "o90313",
              "o90940", "o9779", "o9817", "packer"],
    "not": ["madness", "o10347", "o65414", "o65417", "o65420", "o65423", "o65424", "o65431", "o65432", "schema"],
    "allOf": ["libman", "minecraft-loot-table", "minecraft-predicate", "saucectl.schema", "tson", "typo3",
              "yippee-ki-json_config_schema"],
    "uniqueItems": ["adonisrc.schema", "artifacthub-repo", "behat", "drupal-migration", "embrace-config-schema-1.0.0",
                    "esmrc", "lazydocker", "project-1.0.0-beta8", "project-1.0.0-rc1", "project-1.0.0-rc2", "replit",
                    "sarif-2.1.0-rtm.5", "solidaritySchema", "travis", "uplugin", "vs-nesting", "vsix-publish"],
    "if": ["size-limit"],
    "dependencies": ["calculate_area_530837db"],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fill-timeout", type=float, default=30, help="seconds per schema on the fill path")
    ap.add_argument("--ids", help="a file of schema ids (one a line) instead of the ids in BEFORE")
    args = ap.parse_args()
    before = {sid: kw for kw, ids in BEFORE.items() for sid in ids}
    ids = set(Path(args.ids).read_text().split()) if args.ids else set(before)
    fp = fill_path_coverage(ids, timeout=args.fill_timeout)
    per = fp["per_schema"]
    gained = sorted(s for s, r in per.items() if "ok" in r)
    left = collections.Counter(r["kw"] for r in per.values() if "ok" not in r)
    out = {"ids": len(per), "gained": gained, "n_gained": len(gained), "refusals_left": dict(left.most_common()),
           "timeout_s": args.fill_timeout, "wall_s": fp["wall_s"], "tokenizer": fp["tokenizer"],
           "per_schema": {s: {"before": before.get(s), **r} for s, r in sorted(per.items())}}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{len(gained)}/{len(per)} gained: {', '.join(gained)}; left {dict(left.most_common())}")


if __name__ == "__main__":
    main()
