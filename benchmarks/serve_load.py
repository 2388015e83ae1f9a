"""Load and fault benchmark of ``steerdiff serve`` on loopback: batching on vs off, side by side in one run.

Starts two servers on 127.0.0.1 (``--max-batch 16`` and ``--max-batch 1``, the same code otherwise, one
torch thread each), warms their compile caches, then alternates timed phases between them (``--rounds``
rounds of ``--seconds`` each): ``--clients`` concurrent clients send a mix of JSON Schemas, regexes,
a choice and a lark grammar, each output checked by an independent validator (python-jsonschema with
FormatChecker, ``re.fullmatch``, lark's own LALR parser). Non-JSON requests ask for ``max_tokens=16``
and JSON ones get the server's own canvas size; the server batches continuously (every request in flight
shares each forward pass, whatever its length or step count). Each phase also reports the server's own
profile (``/health`` before and after): forward passes, rows per pass, seconds in the forward passes, in
the requests' step work (constraints, schedule), queued, and the rest of the latency (HTTP, event loop).
Before the servers start, the forward pass alone is timed at 1 and 16 rows (interleaved, one thread):
``16 * t(1) / t(16)`` is the most that batching can gain when the forward pass is the cost. A last
phase on the batched server adds a fault client (kept out of the ratio: a compile costs CPU) that sends
malformed bodies (expects 400), schemas over the limit (413), requests it abandons after 50 ms (the server must cancel them and stay up) and schemas that really take seconds to compile (each one
new, so the compile cache cannot help; they must finish valid while the other clients go on).

Reports requests/s (median over rounds), p50/p99 latency, invalid outputs (must be 0), lost requests
(no answer or an unexpected status; must be 0) and the batched/unbatched ratio.

    python -m benchmarks.serve_load [--clients 16] [--seconds 20] [--rounds 2]
Writes benchmarks/results/serve_load.json and serve_load.txt. Bounded: (2 * rounds + 1)
phases of ``--seconds`` plus the requests in flight at the end of each; only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jsonschema
import lark

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 130},
                                           "role": {"enum": ["admin", "user"]}},
          "required": ["name", "age", "role"], "additionalProperties": False}
EVENT = {"type": "object", "properties": {"title": {"type": "string", "maxLength": 16}, "date": {"type": "string", "format": "date"},
                                          "seats": {"type": "integer", "minimum": 1, "maximum": 500}},
         "required": ["title", "date", "seats"], "additionalProperties": False}
GRAMMAR = 'start: NUMBER (("+"|"-") NUMBER)*\n%import common.NUMBER\n'
PHONE, ZIP = r"[0-9]{3}-[0-9]{4}", r"[0-9]{5}"
TEXTS = ["Maria Lopez, 34, maria@example.org, signs in as a user.", "Jack Smith is 27 and an admin.",
         "Team offsite on 2027-05-08, 40 seats.", "Call me at 555-1234 tomorrow.", "1 + 2 - 3", "The food was great!"]


def workload(rng: random.Random) -> tuple[dict, str, object]:
    """``(chat body, kind, spec)`` for one request of the mix."""
    text = rng.choice(TEXTS)
    msgs = [{"role": "user", "content": text}]
    r = rng.random()
    if r < 0.3:
        return {"messages": msgs, "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}}, "json", PERSON
    if r < 0.5:
        return {"messages": msgs, "response_format": {"type": "json_schema", "json_schema": {"name": "e", "schema": EVENT}}}, "json", EVENT
    if r < 0.65:
        return {"messages": msgs, "max_tokens": 16, "structured_outputs": {"regex": PHONE}}, "regex", PHONE
    if r < 0.75:
        return {"messages": msgs, "max_tokens": 16, "structured_outputs": {"regex": ZIP}}, "regex", ZIP
    if r < 0.85:
        return {"messages": msgs, "max_tokens": 16, "structured_outputs": {"choice": ["positive", "negative"]}}, "choice", None
    return {"messages": msgs, "max_tokens": 16, "structured_outputs": {"grammar": GRAMMAR}}, "grammar", GRAMMAR


_PARSER = lark.Lark(GRAMMAR, parser="lalr")


def valid(kind: str, spec, text: str) -> bool:
    try:
        if kind == "json":
            return not list(jsonschema.Draft202012Validator(spec, format_checker=jsonschema.FormatChecker()).iter_errors(json.loads(text)))
        if kind == "regex":
            return re.fullmatch(spec, text) is not None
        if kind == "choice":
            return text in ("positive", "negative")
        _PARSER.parse(text)
        return True
    except Exception:  # noqa: BLE001 -- any parse failure is an invalid output
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(max_batch: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "steerdiff.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--max-batch", str(max_batch),
           "--threads", "1", "--max-queue", "512"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError("server did not start in 120 s")


async def client_loop(url: str, stop: float, rng: random.Random, out: dict) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        while time.perf_counter() < stop:
            body, kind, spec = workload(rng)
            t = time.perf_counter()
            try:
                r = await c.post("/v1/chat/completions", json={"model": "steerdiff-tiny", **body})
            except httpx.HTTPError as exc:
                out["lost"].append(f"{type(exc).__name__}")
                continue
            dt = time.perf_counter() - t
            if r.status_code != 200:
                out["lost"].append(f"status {r.status_code}: {r.text[:200]}")
                continue
            text = r.json()["choices"][0]["message"]["content"]
            out["lat"].append(dt)
            out["done"] += 1
            if not valid(kind, spec, text):
                out["invalid"].append((kind, text))


async def fault_loop(url: str, stop: float, rng: random.Random, out: dict) -> None:
    """Malformed bodies, schemas over the limit, abandoned requests and seconds-long compiles."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        n = 0
        while time.perf_counter() < stop:
            n += 1
            kind = (n - 1) % 4  # malformed, huge, disconnect, then the seconds-long compile
            if kind == 0:
                r = await c.post("/v1/chat/completions", content=b'{"messages": [', headers={"Content-Type": "application/json"})
                out["faults"].append(("malformed", r.status_code, r.status_code == 400))
            elif kind == 1:
                huge = {"type": "object", "properties": {f"f{i}": {"type": "string", "description": "x" * 64} for i in range(2000)}}
                r = await c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}],
                                                               "response_format": {"type": "json_schema", "json_schema": {"name": "h", "schema": huge}}})
                out["faults"].append(("huge_schema", r.status_code, r.status_code == 413))
            elif kind == 2:
                try:
                    await c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 96, "steps": 96},
                                 timeout=0.05)
                    out["faults"].append(("disconnect", 200, True))
                except httpx.TimeoutException:
                    out["faults"].append(("disconnect", None, True))
            else:  # a schema that takes seconds to compile, new every time (the cache cannot help)
                nonce = f"{n}{rng.randrange(10**6)}"
                slow = {"type": "object", "properties": {f"f{i}_{nonce}": {"type": "string", "maxLength": 8} for i in range(12)}}
                t = time.perf_counter()
                r = await c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}],
                                                               "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": slow}}})
                dt = time.perf_counter() - t
                ok = r.status_code == 200 and valid("json", slow, r.json()["choices"][0]["message"]["content"])
                out["faults"].append(("slow_compile", r.status_code, ok, round(dt, 2)))
            await asyncio.sleep(0.2)


async def phase(url: str, clients: int, seconds: float, seed: int, faults: bool) -> dict:
    out = {"lat": [], "done": 0, "invalid": [], "lost": [], "faults": []}
    async with httpx.AsyncClient() as c:
        h0 = (await c.get(url + "/health")).json()
    t0 = time.perf_counter()
    stop = t0 + seconds
    tasks = [client_loop(url, stop, random.Random(seed * 1000 + i), out) for i in range(clients)]
    if faults:
        tasks.append(fault_loop(url, stop, random.Random(seed), out))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0  # requests in flight at `stop` finish and count: divide by the real wall time
    async with httpx.AsyncClient() as c:
        h1 = (await c.get(url + "/health")).json()
    lat = sorted(out["lat"])
    def pct(q):
        return (lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan"))
    return {"requests": out["done"], "wall_s": round(wall, 2), "rps": round(out["done"] / wall, 3), "p50_s": round(pct(0.5), 3),
            "p99_s": round(pct(0.99), 3), "invalid": len(out["invalid"]), "invalid_examples": out["invalid"][:3],
            "lost": len(out["lost"]), "lost_examples": out["lost"][:3], "faults": out["faults"],
            "profile": server_profile(h0, h1, out["lat"], wall)}


def server_profile(h0: dict, h1: dict, lat: list[float], wall: float) -> dict:
    """Where the phase's time went, from the server's /health counters before and after it."""
    d = {k: h1["profile"][k] - h0["profile"][k] for k in h1["profile"] if k != "max_rows_per_pass"}
    d["forward_passes"] = passes = h1["forward_passes"] - h0["forward_passes"]
    jobs = max(d["jobs_done"], 1)
    mean_lat = statistics.mean(lat) if lat else float("nan")
    return {
        "forward_passes": passes, "rows_per_pass": round(d["row_passes"] / max(passes, 1), 2),
        "padded_share": round(d["padded_positions"] / max(d["positions"], 1), 3),
        "forward_s_per_pass": round(d["model_s"] / max(passes, 1), 4),
        "forward_s_per_row_pass": round(d["model_s"] / max(d["row_passes"], 1), 4),
        "busy_share": {k: round(d[k] / wall, 3) for k in ("model_s", "step_s", "start_s")},
        "per_request_s": {"latency_mean": round(mean_lat, 3), "queued": round(d["wait_s"] / jobs, 3),
                          "running": round(d["run_s"] / jobs, 3),
                          "http_and_loop": round(mean_lat - (d["wait_s"] + d["run_s"]) / jobs, 3)},
        "passes_per_request": round(d["row_passes"] / jobs, 2),
    }


def forward_scaling(rows: int = 16, T: int = 40, reps: int = 7) -> dict:
    """Median seconds of one forward pass at 1 and ``rows`` rows (interleaved, one torch thread)."""
    import torch

    import steerdiff as sd

    torch.set_num_threads(1)
    m = sd.load_model()
    xs = {b: (torch.randint(10, m.vocab_size, (b, T)), torch.ones(b, T, dtype=torch.long)) for b in (1, rows)}
    ts: dict[int, list[float]] = {1: [], rows: []}
    for b in xs:
        m.logits(*xs[b])
    for _ in range(reps):
        for b in xs:
            t = time.perf_counter()
            m.logits(*xs[b])
            ts[b].append(time.perf_counter() - t)
    t1, tn = statistics.median(ts[1]), statistics.median(ts[rows])
    return {"T": T, "rows": rows, "s_1_row": round(t1, 4), f"s_{rows}_rows": round(tn, 4), "ceiling": round(rows * t1 / tn, 2)}


def warm(url: str) -> None:
    rng = random.Random(0)
    for _ in range(30):
        body, _, _ = workload(rng)
        httpx.post(url + "/v1/chat/completions", json=body, timeout=300).raise_for_status()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "serve_load"))
    args = ap.parse_args()
    if not (1 <= args.clients <= 64 and 1 <= args.seconds <= 300 and 1 <= args.rounds <= 5):
        ap.error("bounded: --clients 1..64, --seconds 1..300, --rounds 1..5")
    scaling = forward_scaling()
    print(f"forward pass alone (T={scaling['T']}): 1 row {scaling['s_1_row']} s, 16 rows {scaling['s_16_rows']} s; "
          f"batching can gain at most {scaling['ceiling']}x where the forward pass is the cost", flush=True)
    servers = {}
    try:
        for name, mb in (("batched", 16), ("unbatched", 1)):
            servers[name] = start_server(mb)
            warm(servers[name][1])
        rounds = {"batched": [], "unbatched": []}
        for rd in range(args.rounds):
            for name in ("batched", "unbatched") if rd % 2 == 0 else ("unbatched", "batched"):
                res = asyncio.run(phase(servers[name][1], args.clients, args.seconds, rd, faults=False))
                res["health"] = httpx.get(servers[name][1] + "/health").json()
                rounds[name].append(res)
                print(f"round {rd} {name:9s}: {res['requests']} requests, {res['rps']} req/s, p50 {res['p50_s']} s, "
                      f"p99 {res['p99_s']} s, invalid {res['invalid']}, lost {res['lost']}; profile {res['profile']}", flush=True)
        # faults: a separate phase on the batched server (a compile costs CPU, so it is kept out of the ratio)
        fault_phase = asyncio.run(phase(servers["batched"][1], args.clients, args.seconds, 99, faults=True))
        fault_phase["health"] = httpx.get(servers["batched"][1] + "/health").json()
        print(f"fault phase (batched): {fault_phase['requests']} requests, {fault_phase['rps']} req/s, invalid "
              f"{fault_phase['invalid']}, lost {fault_phase['lost']}, faults {len(fault_phase['faults'])}", flush=True)
        alive = {n: httpx.get(u + "/health").status_code == 200 for n, (_, u) in servers.items()}
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(30)
    med = {n: statistics.median(r["rps"] for r in rs) for n, rs in rounds.items()}
    faults = fault_phase["faults"]
    summary = {
        "clients": args.clients, "seconds": args.seconds, "rounds": args.rounds,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs (shared), torch 1 thread per server",
        "rps_median": med, "ratio_batched_over_unbatched": round(med["batched"] / med["unbatched"], 2) if med["unbatched"] else None,
        "p50_s": {n: statistics.median(r["p50_s"] for r in rs) for n, rs in rounds.items()},
        "p99_s": {n: max(r["p99_s"] for r in rs) for n, rs in rounds.items()},
        "invalid_total": sum(r["invalid"] for rs in rounds.values() for r in rs) + fault_phase["invalid"],
        "lost_total": sum(r["lost"] for rs in rounds.values() for r in rs) + fault_phase["lost"],
        "fault_phase": {k: fault_phase[k] for k in ("requests", "rps", "p50_s", "p99_s", "invalid", "lost")},
        "faults": {k: {"sent": sum(1 for f in faults if f[0] == k), "as_expected": sum(1 for f in faults if f[0] == k and f[2])}
                   for k in ("malformed", "huge_schema", "disconnect", "slow_compile")},
        "slow_compile_latency_s": [f[3] for f in faults if f[0] == "slow_compile"],
        "servers_alive_after": alive, "forward_scaling": scaling,
        "profile": {n: {k: round(statistics.median(r["profile"][k] for r in rs), 4) for k in
                        ("rows_per_pass", "forward_s_per_pass", "forward_s_per_row_pass", "passes_per_request", "padded_share")}
                    | {"per_request_s": {k: round(statistics.median(r["profile"]["per_request_s"][k] for r in rs), 3)
                                         for k in ("latency_mean", "queued", "running", "http_and_loop")},
                       "busy_share": {k: round(statistics.median(r["profile"]["busy_share"][k] for r in rs), 3)
                                      for k in ("model_s", "step_s", "start_s")}}
                    for n, rs in rounds.items()},
        "rounds_detail": rounds, "fault_phase_detail": fault_phase,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(summary, indent=1, default=str))
    lines = [
        f"steerdiff serve load benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}), steerdiff-tiny on CPU, loopback",
        f"{summary['machine']}; {args.clients} concurrent clients, {args.rounds} rounds x {args.seconds:g} s per server, alternating",
        (f"requests/s (median of rounds): batched (--max-batch 16) {med['batched']:.2f}, one at a time (--max-batch 1) "
        f"{med['unbatched']:.2f}; ratio {summary['ratio_batched_over_unbatched']}x"),
        (f"latency p50: batched {summary['p50_s']['batched']:.2f} s, unbatched {summary['p50_s']['unbatched']:.2f} s; "
        f"p99: batched {summary['p99_s']['batched']:.2f} s, unbatched {summary['p99_s']['unbatched']:.2f} s"),
        f"invalid outputs: {summary['invalid_total']}; lost requests: {summary['lost_total']}; servers alive after: {alive}",
        (f"fault phase ({args.seconds:g} s, batched server, {args.clients} clients plus faults): {fault_phase['requests']} "
         f"requests, {fault_phase['rps']} req/s, invalid {fault_phase['invalid']}, lost {fault_phase['lost']}"),
        ("faults (sent / answered as expected): "
         + ", ".join(f"{k} {v['sent']}/{v['as_expected']}" for k, v in summary["faults"].items())),
        f"seconds-long compiles (new schema each, 12 optional properties): latencies {summary['slow_compile_latency_s']} s",
        (f"forward pass alone (T={scaling['T']}, 1 thread, interleaved): 1 row {scaling['s_1_row']} s, 16 rows "
         f"{scaling['s_16_rows']} s: per row {scaling['ceiling']}x cheaper batched, the most batching can gain"),
    ]
    for n, p in summary["profile"].items():
        q, b = p["per_request_s"], p["busy_share"]
        lines.append(f"profile {n} (median of rounds): {p['rows_per_pass']} rows/pass, {p['forward_s_per_pass']} s/pass "
                     f"({p['forward_s_per_row_pass']} s per row), {p['passes_per_request']} passes/request, padding "
                     f"{100 * p['padded_share']:.0f}% of positions; server busy: forward {100 * b['model_s']:.0f}%, step work "
                     f"{100 * b['step_s']:.0f}%, request start {100 * b['start_s']:.0f}% of wall; per request: latency "
                     f"{q['latency_mean']} s = queued {q['queued']} + running {q['running']} + http/loop {q['http_and_loop']}")
    Path(args.out + ".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if summary["invalid_total"] == 0 and summary["lost_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
