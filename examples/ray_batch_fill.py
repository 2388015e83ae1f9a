"""Fill a JSON Schema over a dataset on Ray: one steerdiff model per actor, per-row schemas allowed.

    pip install 'steerdiff[ray]'
    python examples/ray_batch_fill.py                 # a local Ray cluster, 2 CPUs, 40 synthetic records
    python examples/ray_batch_fill.py --address auto  # an existing cluster (add --num-gpus 1 on GPU nodes)

Every output is valid against its schema (checked below with python-jsonschema); rows that fail carry an
"error" instead of a "value".
"""

from __future__ import annotations

import argparse
import json

import jsonschema
import ray

from steerdiff.ray import fill_dataset

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 130}},
          "required": ["name", "age"], "additionalProperties": False}
CITY = {"type": "object", "properties": {"city": {"enum": ["Paris", "Lyon", "Nice"]}}, "required": ["city"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--concurrency", type=int, default=2, help="model-holding actors")
    ap.add_argument("--num-gpus", type=float, default=0, help="GPUs per actor")
    args = ap.parse_args()
    ray.init(address=args.address) if args.address else ray.init(num_cpus=2)
    names = ["Maria Lopez", "Jack Smith", "Anna Berg", "Li Wei"]
    items = []
    for i in range(args.rows):
        if i % 4 == 3:  # a row with its own schema
            items.append({"id": i, "text": f"{names[i % 4]} moved to {['Paris', 'Lyon', 'Nice'][i % 3]}.", "schema": json.dumps(CITY)})
        else:
            items.append({"id": i, "text": f"{names[i % 4]} is {20 + i} years old.", "schema": None})
    ds = ray.data.from_items(items)
    out = fill_dataset(ds, schema=PERSON, concurrency=args.concurrency, num_gpus=args.num_gpus, batch_size=8, threads=1)
    rows = sorted(out.take_all(), key=lambda r: r["id"])
    for r in rows:
        if r["error"]:
            print(r["id"], "error:", r["error"])
            continue
        value = json.loads(r["value"])
        jsonschema.validate(value, json.loads(r["schema"]) if r["schema"] else PERSON)
        print(r["id"], value)
    print(f"{sum(1 for r in rows if not r['error'])}/{len(rows)} rows filled, all valid")


if __name__ == "__main__":
    main()
