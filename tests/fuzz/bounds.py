"""What every fuzz target asserts: a clear error or a valid result, within bounded time and memory,
never a traceback (any other exception) or a 500.

The number of examples per target is small by default (the whole fuzz set stays well under a
minute in CI); ``DATACAP_FUZZ_EXAMPLES=20000`` runs the long campaign. The time bound is a hang
detector, not a speed test: an input that keeps a parser busy for ``HANG_SECONDS`` (thousands of
times what any real input takes) is a finding, like a super-linear regex on a 60 KB text.
"""

from __future__ import annotations

import os
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

from datacap.errors import DatacapError

T = TypeVar("T")
EXAMPLES = int(os.environ.get("DATACAP_FUZZ_EXAMPLES", "0") or 0)
HANG_SECONDS = 10.0
MEMORY_LIMIT = 256 * 2**20  # bytes allocated at the peak of one call; real inputs use a few MB


def fuzz_settings(default: int) -> Any:
    """Hypothesis settings: ``default`` examples, or DATACAP_FUZZ_EXAMPLES; no deadline (see above)."""
    return settings(max_examples=EXAMPLES or default, deadline=None, derandomize=not EXAMPLES,
                    suppress_health_check=list(HealthCheck), database=None, report_multiple_bugs=False)


class Hang(AssertionError):
    pass


@contextmanager
def watchdog(seconds: float = HANG_SECONDS) -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds:g} s: not bounded in time")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def clear_error_or_result(call: Callable[[], T]) -> T | DatacapError:
    """Run ``call``: its result, or the DatacapError it raised (a clear error). Anything else, a hang
    or a memory peak above MEMORY_LIMIT fails the test with the input hypothesis shrinks to."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        with watchdog():
            try:
                return call()
            except DatacapError as exc:
                assert str(exc).strip(), "an error must say what is wrong"
                return exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        if started:
            tracemalloc.stop()
        assert peak < MEMORY_LIMIT, f"peak {peak} bytes: not bounded in memory"
