"""What usage beyond every allowance costs.

The overage of a billing unit (a local day when ``daily_cap`` is set, else the whole cycle) is split
in order into blocks of ``block`` bytes (one block when ``block`` is unset); each block costs
``ceil(bytes / per) * price``, at most ``block_cap``; a day costs at most ``daily_cap``.
"""

from __future__ import annotations

from collections.abc import Iterable

from datacap.plans.config import OverageConfig


def unit_cost(overage: int, cfg: OverageConfig) -> float:
    """Cost of ``overage`` bytes within one billing unit (before the daily cap)."""
    if overage <= 0:
        return 0.0
    block = cfg.block or overage
    full, rest = divmod(overage, block)
    return full * _block_cost(block, cfg) + _block_cost(rest, cfg)


def _block_cost(size: int, cfg: OverageConfig) -> float:
    cost = -(-size // cfg.per) * cfg.price  # a started `per` is charged in full
    return min(cost, cfg.block_cap) if cfg.block_cap is not None else cost


def cycle_cost(daily_overage: Iterable[int], cfg: OverageConfig) -> float:
    """Cost of a cycle's overage given per local day (order does not matter without a daily cap)."""
    days = [b for b in daily_overage if b > 0]
    if cfg.daily_cap is None:
        return _money(unit_cost(sum(days), cfg))
    return _money(sum(min(unit_cost(b, cfg), cfg.daily_cap) for b in days))


def _money(value: float) -> float:
    # Float sums of prices pick up noise in the 12th digit; no carrier bills below a thousandth.
    return round(value, 4)
