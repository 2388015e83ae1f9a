"""Integer and number ranges as regexes of canonical JSON numbers (exact, any magnitude)."""

from __future__ import annotations

import functools
import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction

from steerdiff_plugins.memos import memo
from steerdiff_plugins.schema.fragments import _FRAC_ANY, _alt, _group


def _same_len(lo: str, hi: str) -> str:
    if not lo:
        return ""
    if lo == hi:
        return lo
    if len(lo) == 1:
        return f"[{lo}-{hi}]"
    k = len(lo) - 1
    if lo[1:] == "0" * k and hi[1:] == "9" * k:
        head = lo[0] if lo[0] == hi[0] else f"[{lo[0]}-{hi[0]}]"
        return head + "[0-9]" + ("{%d}" % k if k > 1 else "")
    if lo[0] == hi[0]:
        return lo[0] + _same_len(lo[1:], hi[1:])
    parts = [lo[0] + _group(_same_len(lo[1:], "9" * k))]
    a, b = int(lo[0]) + 1, int(hi[0]) - 1
    if a <= b:
        head = str(a) if a == b else f"[{a}-{b}]"
        parts.append(head + "[0-9]" + ("{%d}" % k if k > 1 else ""))
    parts.append(hi[0] + _group(_same_len("0" * k, hi[1:])))
    return _alt(parts)


def _nonneg_range(lo: int, hi: int | None) -> str | None:
    """Canonical decimal integers (no leading zeros) in [lo, hi]; hi None = unbounded. None if empty."""
    if lo < 0:
        lo = 0
    if hi is not None and hi < lo:
        return None
    parts = []
    top = len(str(hi)) if hi is not None else len(str(lo))
    full = []  # a run of lengths n whose every n-digit number is in range: one counted class
    for n in range(len(str(lo)), top + 1):
        a = max(lo, 10 ** (n - 1) if n > 1 else 0)
        b = 10 ** n - 1 if hi is None else min(hi, 10 ** n - 1)
        if n > 1 and a == 10 ** (n - 1) and b == 10 ** n - 1:
            full.append(n)
            continue
        if full:
            parts.append(_full_lengths(full[0], full[-1]))
            full = []
        if a <= b:
            parts.append(_same_len(str(a), str(b)))
    if full:
        parts.append(_full_lengths(full[0], full[-1]))
    if hi is None:
        parts.append("[1-9][0-9]" + ("{%d,}" % top if top > 1 else "+"))
    return _alt(parts)


def _full_lengths(n1: int, n2: int) -> str:
    """Every canonical integer of ``n1`` to ``n2`` digits (``n1 >= 2``)."""
    return "[1-9][0-9]" + ("{%d}" % (n1 - 1) if n1 == n2 else "{%d,%d}" % (n1 - 1, n2 - 1))


def integer_range_regex(lo: int | None, hi: int | None) -> str | None:
    """Canonical JSON integers in [lo, hi] (either side None = unbounded). None if the range is empty."""
    if lo is not None and hi is not None and lo > hi:
        return None
    parts = []
    if hi is None or hi >= 0:
        r = _nonneg_range(max(lo, 0) if lo is not None else 0, hi)
        if r:
            parts.append(r)
    if lo is None or lo < 0:
        mlo = max(1, -hi) if hi is not None else 1
        r = _nonneg_range(mlo, -lo if lo is not None else None)
        if r:
            parts.append("-" + _group(r) if "|" in r else "-" + r)
    return _alt(parts) if parts else None


_BOUND_DIGITS = 20  # a bound whose safe decimal needs more fraction digits is rounded toward the inside


def _safe_bound(v, incl: bool, lower: bool) -> Decimal:
    """The inclusive decimal bound that keeps a plain JSON number valid the way python-jsonschema checks it.

    ``json.loads`` turns a number with a fraction into a float, and the check compares floats, so a decimal
    just above an exclusive bound (``1.00000000000000001 > 1``) can still fail it. Bounding by the
    nearest double on the valid side (the smallest double ``>= v`` or ``> v`` for a lower bound, the largest
    ``<=``/``<`` for an upper one) written in its shortest form ``d`` is safe: ``D >= d`` implies
    ``float(D) >= float(d)`` because rounding is monotonic. Decimals between ``v`` and ``d`` are the
    only ones lost (for ``exclusiveMinimum: 1``: ``1 < x < 1.0000000000000002``). A ``d`` with more than
    ``_BOUND_DIGITS`` fraction digits (``5e-324`` for ``exclusiveMinimum: 0``) is rounded toward the inside."""
    x = Fraction(v)
    f = float(x)
    if lower and (Fraction(f) < x or (not incl and Fraction(f) == x)):
        f = math.nextafter(f, math.inf)
    if not lower and (Fraction(f) > x or (not incl and Fraction(f) == x)):
        f = math.nextafter(f, -math.inf)
    d = Decimal(repr(f))
    if d.as_tuple().exponent < -_BOUND_DIGITS:
        d = d.quantize(Decimal(1).scaleb(-_BOUND_DIGITS), rounding=ROUND_CEILING if lower else ROUND_FLOOR)
    return d


def _fraction_range(lo: str, hi: str | None) -> tuple[str | None, bool]:
    """Fraction digit strings ``D`` with ``0.lo <= 0.D <= 0.hi`` (``hi`` None: no upper bound):
    ``(regex of the non-empty D or None, whether no fraction at all, i.e. 0, is in range)``."""
    lo, hi = lo.rstrip("0"), (hi.rstrip("0") if hi is not None else None)
    if hi is not None:
        n = max(len(lo), len(hi))
        if lo.ljust(n, "0") > hi.ljust(n, "0"):
            return None, False
    empty_ok = lo == ""
    if hi is None and lo == "":
        return "[0-9]+", True
    if hi == "":  # D <= 0: zeros only (then lo is "" too)
        return "0+", True
    l0 = int(lo[0]) if lo else 0
    h0 = int(hi[0]) if hi is not None else None
    alts = []
    top = 9 if h0 is None else h0 - 1
    if l0 + 1 <= top:  # a first digit strictly inside: anything may follow
        alts.append((str(l0 + 1) if l0 + 1 == top else f"[{l0 + 1}-{top}]") + "[0-9]*")

    def then(first: int, sub: tuple[str | None, bool]) -> None:
        r, e = sub
        if r is not None:
            alts.append(str(first) + (f"(?:{r})?" if e else r))
        elif e:
            alts.append(str(first))

    if h0 is None or l0 != h0:
        then(l0, _fraction_range(lo[1:], None))
        if h0 is not None:
            then(h0, _fraction_range("", hi[1:]))
    else:
        then(l0, _fraction_range(lo[1:], hi[1:]))
    return (_alt(alts) if alts else None), empty_ok


def _with_fraction(int_part: str, lo: str, hi: str | None) -> str | None:
    r, e = _fraction_range(lo, hi)
    if r is None:
        return int_part if e else None
    return int_part + r"(?:\." + r + ")" + ("?" if e else "")


def _decimal_nonneg(a: Decimal, b: Decimal | None) -> list[str]:
    """Plain decimals (no exponent) y >= 0 with a <= y <= b (decimal a >= 0; b None = unbounded)."""
    def split(x: Decimal) -> tuple[int, str]:
        i = int(x)
        return i, format(x - i, "f").partition(".")[2]

    if b is not None and b < a:
        return []
    (A, fa) = split(a)
    if b is not None:
        B, fb = split(b)
        if A == B:
            one = _with_fraction(str(A), fa, fb)
            return [one] if one else []
    out = [x for x in [_with_fraction(str(A), fa, None)] if x]
    mid = _nonneg_range(A + 1, None if b is None else B - 1)
    if mid:
        out.append(_group(mid) + _FRAC_ANY)
    if b is not None:
        last = _with_fraction(str(B), "", fb)
        if last:
            out.append(last)
    return out


def number_range_regex(lo, lo_incl, hi, hi_incl) -> str | None:
    """Plain JSON decimals x with lo <(=) x <(=) hi (numbers or None), as python-jsonschema checks them
    (see :func:`_safe_bound`)."""
    a = None if lo is None else _safe_bound(lo, lo_incl, True)
    b = None if hi is None else _safe_bound(hi, hi_incl, False)
    parts = []
    if b is None or b >= 0:
        parts += _decimal_nonneg(max(a, Decimal(0)) if a is not None else Decimal(0), b)
    if a is None or a < 0:
        # x = -y, y in [max(0, -b), -a]
        ya = Decimal(0) if (b is None or b >= 0) else -b
        parts += ["-" + _group(p) for p in _decimal_nonneg(ya, None if a is None else -a)]
    return _alt(parts) if parts else None



_MAX_STEP_BITS = 4  # multipleOf steps 1/2 .. 1/16 (fractions with up to 4 decimal digits)


def multiple_of_regex(mo: float, lo, lo_incl: bool, hi, hi_incl: bool, integer: bool) -> str | None:
    """Plain JSON decimals ``x`` that python-jsonschema accepts for a float ``multipleOf: mo`` (its check is
    ``int(x / mo) == x / mo`` in doubles) within the bounds, or None when none is in range. Raises
    ValueError (the reason) for a step not handled here.

    The claim, proved in floats: write ``mo``'s decimal ``d = 1 / q`` (``0.01``: q = 100, ``q = 2**a * o``
    with ``o`` odd) and its double ``D``, ``e = (D - d) / D``. Take ``x = k d`` a double (exactly when ``x``
    is a multiple of ``s = 1 / 2**a``, i.e. ``o`` divides ``k``) with ``2**t <= |k| < 2**53``. The exact
    quotient is ``x / D = k - k e``. If ``o == 1``, ``d`` is a double and ``e = 0``. Else ``k`` is not a power
    of two (``o`` divides it), so the doubles next to ``k`` are ``2**(t-52)`` away on both sides, and
    ``|k e| < 2**(t+1) * 2**-54 = 2**(t-53)`` (half that spacing) when ``|e| <= 2**-54``: the quotient rounds
    to ``k``, an integer, and passes. (``0.1``, ``0.05``: ``|e| = 2**-54`` exactly; ``0.01``: 0.375 of it.)
    The set kept is the multiples of ``s`` with ``|x| < 10**E``, ``10**E <= 2**53 d``. It is a NARROWING where ``q`` is not a power of two: ``0.07``
    is a multiple of ``0.01`` in decimals (and python-jsonschema rejects it: ``0.07 / 0.01`` is
    ``7.000000000000001``), but some such decimals pass by rounding luck and are not kept, except in a bounded
    range of at most ``MAX_ENUMERATED`` multiples whose regex stays under ``MAX_ENUMERATED_CHARS``, where each
    multiple is checked as python-jsonschema checks it and the language is exactly the accepted ones
    (``_enumerated_multiples``: ``0..9.99`` by ``0.01`` keeps ``2.07`` and ``9.99``, not ``0.07``)."""
    if isinstance(mo, bool) or not isinstance(mo, float) or not math.isfinite(mo) or mo <= 0:
        raise ValueError(f"multipleOf {mo!r} is not a positive float")
    d = Fraction(repr(mo))
    if d.numerator != 1:
        raise ValueError(f"multipleOf {mo} is not 1/n (steps like 0.03 are not digit-regular)")
    q, a = d.denominator, 0
    while q % 2 == 0:
        q, a = q // 2, a + 1
    if a > _MAX_STEP_BITS:
        raise ValueError(f"multipleOf {mo}: its binary step 1/2**{a} has over {_MAX_STEP_BITS} bits")
    e = (Fraction(mo) - d) / Fraction(mo)  # x / D - k = -k e exactly, for x = k d
    if abs(e) > Fraction(1, 2 ** 54):
        raise ValueError(f"multipleOf {mo}: its double is too far from its decimal for an exact quotient")
    if o_bounded := _enumerated_multiples(mo, d, lo, lo_incl, hi, hi_incl, integer):
        return o_bounded[0]
    top = 0
    while Fraction(10) ** (top + 1) <= Fraction(2 ** 53) * d:
        top += 1
    limit = 10 ** top  # |x| < limit
    steps = [Fraction(0)] if integer else [Fraction(j, 2 ** a) for j in range(2 ** a)]
    L = None if lo is None else Fraction(lo)
    H = None if hi is None else Fraction(hi)
    by_range: dict[str, list[str]] = {}  # integer-part regex (with its sign) -> the fraction texts it takes
    for f in steps:
        frac = "" if f == 0 else r"\." + format(Decimal(f.numerator) / Decimal(f.denominator), "f").partition(".")[2]
        # x = n + f >= 0
        nlo = 0 if L is None else max(0, _ceil_excl(L - f, lo_incl))
        nhi = limit - 1 if H is None else min(limit - 1, _floor_excl(H - f, hi_incl))
        if nlo <= nhi:
            by_range.setdefault(_group(integer_range_regex(nlo, nhi)), []).append(frac)
        # x = -(n + f) < 0: n + f in [-H, -L]
        mlo = (1 if f == 0 else 0) if H is None else max(1 if f == 0 else 0, _ceil_excl(-H - f, hi_incl))
        mhi = limit - 1 if L is None else min(limit - 1, _floor_excl(-L - f, lo_incl))
        if mlo <= mhi:
            by_range.setdefault("-" + _group(integer_range_regex(mlo, mhi)), []).append(frac)
    parts = []
    for head, fracs in by_range.items():
        others = [f for f in fracs if f]
        tail = _alt(others) if others else ""
        parts.append(head + (_group(tail) + "?" if "" in fracs and tail else tail))
    return _alt(parts) if parts else None


def _ceil_excl(v: Fraction, incl: bool) -> int:
    """The least integer n with n >= v (incl) or n > v."""
    return math.ceil(v) if incl else math.floor(v) + 1


def _floor_excl(v: Fraction, incl: bool) -> int:
    """The greatest integer n with n <= v (incl) or n < v."""
    return math.floor(v) if incl else math.ceil(v) - 1


MAX_ENUMERATED = 20_000  # multiples of a float multipleOf in a bounded range written one by one (exact)
# ... when their regex stays this small (0..9.99 by 0.01: 1.6k characters; 0..99.99: 4.1k, left to the binary
# steps): a number regex is copied into every use, and MaskBench o46322's 0..99.99 fields took its regex to 341k
# characters and fill to the grammar engine (54 s against 10 s)
MAX_ENUMERATED_CHARS = 2_000


@memo
@functools.lru_cache(maxsize=64)  # 10,000 multiples take about 80 ms; a $ref'd definition asks again per use
def _enumerated_multiples(mo: float, d: Fraction, lo, lo_incl: bool, hi, hi_incl: bool, integer: bool):
    """``(regex or None,)`` of exactly the plain decimals ``k * d`` in a bounded range that python-jsonschema
    accepts (``int(x / mo) == x / mo`` and the bounds, in doubles, on ``float(text)``), when the range holds at
    most ``MAX_ENUMERATED`` multiples and ``d`` is not a binary fraction (else ``multiple_of_regex``'s binary
    steps are exact already); None otherwise. Each text is the shortest decimal (``Num.dump`` writes it)."""
    if lo is None or hi is None or integer or (d.denominator & (d.denominator - 1)) == 0:
        return None
    q = d.denominator
    # the bounds as written (99.99, not its double), one step wider: the checks in doubles below decide
    k_lo, k_hi = math.ceil(Fraction(repr(lo)) * q) - 1, math.floor(Fraction(repr(hi)) * q) + 1
    if k_hi - k_lo + 1 > MAX_ENUMERATED:
        return None
    by_int: dict[str, list[str]] = {}  # integer part with sign -> fraction digits accepted
    for k in range(k_lo, k_hi + 1):
        text = format(Decimal(k) / Decimal(q), "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text == "-0":
            continue
        x = float(text)
        quotient = x / mo
        if int(quotient) != quotient or (x < lo if lo_incl else x <= lo) or (x > hi if hi_incl else x >= hi):
            continue
        head, _, frac = text.partition(".")
        by_int.setdefault(head, []).append(frac)
    groups: dict[tuple, list[str]] = {}  # integer parts sharing one set of fractions
    for head, fracs in by_int.items():
        groups.setdefault(tuple(fracs), []).append(head)
    parts = []
    for fracs, heads in groups.items():
        tails = [f for f in fracs if f]
        tail = r"\." + _group(_alt(_digit_trie(tails))) if tails else ""
        if tails and "" in fracs:
            tail = _group(tail) + "?"
        parts.append(_group(_alt(heads)) + tail)
    rx = _alt(parts) if parts else None
    if rx is not None and len(rx) > MAX_ENUMERATED_CHARS:
        return None  # the binary steps instead (a narrowing): see MAX_ENUMERATED_CHARS
    return (rx,)


def _digit_trie(texts: list[str]) -> list[str]:
    """Alternatives of a regex for exactly ``texts`` (digit strings), sharing first digits."""
    by_first: dict[str, list[str]] = {}
    for t in texts:
        by_first.setdefault(t[0], []).append(t[1:])
    out = []
    for c, rests in by_first.items():
        ends = [r for r in rests if not r]
        longer = [r for r in rests if r]
        if not longer:
            out.append(c)
            continue
        if all(len(r) == 1 for r in longer):
            body = "[" + "".join(sorted(longer)) + "]" if len(longer) > 1 else longer[0]
        else:
            body = _group(_alt(_digit_trie(longer)))
        out.append(c + (_group(body) + "?" if ends else body))
    return out
