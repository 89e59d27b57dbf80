"""Benchmark: reading carrier texts, ordinary and hostile, and what each costs.

Reads the 33 carrier texts of the tests (``tests/plans/sms_corpus.py``) many times and prints the
time per text; then the hostile inputs of issue #13 (a 60 KB nested-parenthesis text, 1 MB of digits,
a 350-digit figure, the longest text accepted with 1,900 nested parentheses, 300 clauses) once each,
with the outcome (a reading, or the error's first words) and the time. The bare interpreter start,
measured in the same run, is the yardstick: no text should cost a visible fraction of it.

Run: ``.venv/bin/python bench/bench_sms.py`` (from the repository root; the tests package is found by itself)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package (its text corpus)
from tests.plans.sms_corpus import NOW, SH, TEXTS

from datacap.errors import InputError
from datacap.plans.sms import parse_sms

REPEAT = 200


def timed(text: str) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        reading = parse_sms(text, NOW, SH)
        outcome = f"{len(reading.parts)} part(s)"
    except InputError as err:
        outcome = "refused: " + str(err)[:48]
    return time.perf_counter() - start, outcome


def main() -> None:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(REPEAT):
        for _, sender, text, *_ in TEXTS:
            parse_sms(text, NOW, SH, sender=sender)
    per_text = (time.perf_counter() - start) / (REPEAT * len(TEXTS))
    chars = sum(len(t[2]) for t in TEXTS) / len(TEXTS)
    print(f"bare interpreter start: {bare * 1000:.1f} ms")
    print(f"carrier texts: {len(TEXTS)} x {REPEAT}, mean {chars:.0f} characters: {per_text * 1e6:.0f} µs per text "
          f"({per_text / bare * 100:.3f} % of an interpreter start)")
    hostile = {
        "60 KB nested parentheses": "(" * 30000 + "剩余1GB" + ")" * 30000,
        "1 MB of digits with a unit": "剩余" + "1" * 1_000_000 + "GB",
        "350-digit figure": "国内通用流量剩余" + "9" * 350 + "GB",
        "1,900 nested parentheses (3,800+ chars)": "(" * 1900 + "国内通用流量剩余1GB" + ")" * 1900,
        "300 clauses": "，".join(["国内通用流量剩余1GB"] * 300),
        "4,000 characters of 流量": "流量" * 2000,
    }
    print(f"{'hostile input':42} {'time':>10}  outcome")
    for name, text in hostile.items():
        seconds, outcome = timed(text)
        print(f"{name:42} {seconds * 1000:8.2f} ms  {outcome}")


if __name__ == "__main__":
    main()
