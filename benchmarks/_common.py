"""Helpers the benchmark scripts share: percentiles and summary figures."""
from __future__ import annotations


def pct(xs, q):
    """The ``q``-th percentile (0-100) of ``xs`` by nearest rank on the sorted list; None for no data."""
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def r(x, nd=2):
    """``x`` rounded to ``nd`` places; None stays None."""
    return None if x is None else round(float(x), nd)


def stats(xs):
    """``{"n", "p50", "p95", "max"}`` of ``xs``, rounded."""
    return {"n": len(xs), "p50": r(pct(xs, 50)), "p95": r(pct(xs, 95)), "max": r(max(xs) if xs else None)}
