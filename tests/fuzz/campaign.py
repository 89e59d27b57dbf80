"""The long fuzz run, counting instead of stopping: every target for N examples, each failure
recorded by its kind and place, then a table. Run before closing a robustness issue:

    DATACAP_FUZZ_EXAMPLES=20000 .venv/bin/python -m tests.fuzz.campaign

The API target runs as a test with the same variable (it stops at its first failure):

    DATACAP_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/fuzz/test_fuzz_api.py
"""

from __future__ import annotations

import collections
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st


def record(counts: collections.Counter[str], check: Callable[..., None]) -> Callable[..., None]:
    def run(value: Any) -> None:
        try:
            check(value)
            counts["ok"] += 1
        except Exception as exc:  # recorded, not raised: the campaign goes on
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            counts[f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}: {str(exc)[:90]}"] += 1
    return run


def campaign(name: str, strategy: Any, check: Callable[..., None], examples: int) -> None:
    counts: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    runner = given(strategy)(record(counts, check))
    settings(max_examples=examples, deadline=None, phases=[Phase.generate], database=None,
             suppress_health_check=list(HealthCheck))(runner)()
    total = sum(counts.values())
    print(f"{name:<22} {total:>7} examples {time.monotonic() - started:7.1f} s  failures: "
          f"{total - counts['ok']}", flush=True)
    for kind, n in counts.most_common():
        if kind != "ok":
            print(f"    {n:>6} x {kind}", flush=True)


def main() -> int:
    from . import test_fuzz_config as config
    from . import test_fuzz_csv as csvf
    from . import test_fuzz_sms as sms

    examples = int(os.environ.get("DATACAP_FUZZ_EXAMPLES") or 20000)
    only = set(sys.argv[1:])
    targets: list[tuple[str, Any, Callable[..., None]]] = [
        ("sms: carrier-like", sms.CARRIER_TEXT, sms.read),
        ("sms: any text", st.text(max_size=2000), sms.read),
        ("csv: csv-like", csvf.csv_text(), lambda t: csvf.read(t.encode("utf-8", "surrogatepass"))),
        ("csv: any bytes", st.binary(max_size=4000), csvf.read),
        ("config: documents", config.document(), config.load),
        ("config: any text", st.text(max_size=3000), config.load),
    ]
    for name, strategy, check in targets:
        if not only or name.split(":")[0] in only:
            campaign(name, strategy, check, examples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
