"""Sizes, rates and durations as people write them, and bytes as people read them.

Carriers bill in binary multiples (1 KB = 1024 B), so every size suffix here is binary, whether it is
written ``KB`` or ``KiB``. Rates are in bits per second and decimal (1 Mbit/s = 1,000,000 bit/s), as
``tc`` and every speed test use them.

Sizes are shown by one policy (``[display] units``) for every face: ``carrier`` (the default) writes
them as carriers, the config and this parser do, GB = 1024 MB; ``iec`` writes the same values GiB/MiB;
``si`` divides by 1000 (GB = 1000 MB), as disk makers count. The dashboard's script follows it too.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from datacap.errors import InputError

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kb": 1024, "kib": 1024,
    "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1024**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1024**4, "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_RATE_UNITS = {"bit/s": 1, "bps": 1, "kbit/s": 10**3, "kbps": 10**3, "mbit/s": 10**6, "mbps": 10**6,
               "gbit/s": 10**9, "gbps": 10**9}
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z/]+)\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")


MAX_SIZE = 1024**5  # 1 PB (binary, as carriers count): no plan, pack or carrier figure comes near it
_MAX_SIZE_TEXT = "1 PB (1024 TB)"


def parse_size(text: str | int) -> int:
    """``"5 GB"`` -> 5368709120. Integers are bytes. Exact (decimal arithmetic, no float rounding) and
    bounded by :data:`MAX_SIZE`. Raises InputError naming what was expected."""
    if isinstance(text, bool):
        raise InputError(f"expected a size like '5 GB', found {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise InputError(f"expected a non-negative size, found {text}")
        return _bounded(text, str(text))
    raw = str(text)
    match = _SIZE_RE.match(raw) if len(raw) <= 64 else None
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        shown = raw if len(raw) <= 64 else raw[:40] + "…"
        raise InputError(f"expected a size like '500 MB' or '5 GB' (units B, KB, MB, GB, TB), found {shown!r}")
    value = Decimal(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if value > MAX_SIZE:
        raise InputError(f"expected a size up to {_MAX_SIZE_TEXT}, found {raw.strip()!r}")
    return _bounded(int(value.to_integral_value(ROUND_HALF_EVEN)), raw)


def _bounded(value: int, shown: str) -> int:
    if value > MAX_SIZE:
        raise InputError(f"expected a size up to {_MAX_SIZE_TEXT}, found {shown.strip()[:40]!r}")
    return value


def parse_rate(text: str) -> int:
    """``"1 Mbit/s"`` -> 1000000 (bits per second)."""
    match = _RATE_RE.match(str(text))
    if not match or match.group(2).lower() not in _RATE_UNITS:
        raise InputError(f"expected a rate like '1 Mbit/s' (bit/s, kbit/s, Mbit/s, Gbit/s), found {text!r}")
    rate = round(_finite(match.group(1), text) * _RATE_UNITS[match.group(2).lower()])
    if rate <= 0:
        raise InputError(f"expected a positive rate, found {text!r}")
    return rate


def parse_duration(text: str) -> int:
    """``"1d"`` -> 86400 seconds; accepts s, m/min, h, d, w."""
    match = _DURATION_RE.match(str(text))
    if not match:
        raise InputError(f"expected a duration like '30s', '12h' or '7d', found {text!r}")
    return round(_finite(match.group(1), text) * _DURATION_UNITS[match.group(2)])


def _finite(number: str, text: object) -> float:
    """The figure of ``text`` as a float; a figure too large for one (400 digits) is an InputError."""
    value = float(number)
    if value == float("inf"):
        raise InputError(f"expected a figure of at most 308 digits, found {str(text)[:40]!r}...")
    return value


UnitPolicy = Literal["carrier", "iec", "si"]
_UNITS: dict[str, tuple[int, tuple[str, ...]]] = {
    "carrier": (1024, ("B", "KB", "MB", "GB", "TB", "PB")),
    "iec": (1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB")),
    "si": (1000, ("B", "kB", "MB", "GB", "TB", "PB")),
}
_policy: UnitPolicy = "carrier"


def set_unit_policy(policy: UnitPolicy) -> None:
    """Set how :func:`format_bytes` writes sizes (the config loader applies ``[display] units``)."""
    global _policy
    if policy not in _UNITS:
        raise InputError(f"expected a unit policy ({', '.join(_UNITS)}), found {policy!r}")
    _policy = policy


def unit_policy() -> UnitPolicy:
    return _policy


def format_bytes(count: int | float, precision: int = 2, policy: UnitPolicy | None = None) -> str:
    """Sizes for people, by the unit policy: ``1536`` -> ``'1.50 KB'`` (carrier), ``'1.50 KiB'`` (iec),
    ``'1.54 kB'`` (si)."""
    base, units = _UNITS[policy or _policy]
    value = float(count)
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit in units:
        if value < base or unit == units[-1]:
            if unit == "B":
                return f"{sign}{int(value)} B"
            return f"{sign}{value:.{precision}f} {unit}"
        value /= base
    raise AssertionError("unreachable")


def format_rate(bytes_per_second: float) -> str:
    """Rates for people: bits per second, decimal units."""
    bits = bytes_per_second * 8
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.2f} {unit}"
    return f"{bits:.0f} bit/s"
