"""Without the `pdf` extra (WeasyPrint, pypdfium2, Pillow), `report --format pdf|png` says how to get it.

The extra's packages are made unimportable in the child process the way an interpreter without them
behaves (a None entry in sys.modules raises ImportError on import); everything else is the real CLI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import subprocess_env

WITHOUT_EXTRA = ("import runpy, sys\n"
                 "for name in ('weasyprint', 'pypdfium2', 'PIL'):\n"
                 "    sys.modules[name] = None\n"
                 "sys.argv = ['datacap'] + sys.argv[1:]\n"
                 "runpy.run_module('datacap', run_name='__main__')\n")


@pytest.mark.parametrize("fmt", ["pdf", "png"])
def test_pdf_and_png_without_the_extra_say_how_to_get_it(run_cli: Any, tmp_path: Path, fmt: str) -> None:
    csv = tmp_path / "u.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes\n2026-10-10T10:00:00+08:00,wwan0,1000,2000\n")
    run_cli("import", str(csv))
    out = tmp_path / f"r.{fmt}"
    env = subprocess_env(DATACAP_DB=str(run_cli.db), DATACAP_CONFIG=str(run_cli.config),
                         XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", WITHOUT_EXTRA, "report", "--period", "2026-10", "--format", fmt,
                           "-o", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'datacap[pdf]'" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    md = subprocess.run([sys.executable, "-c", WITHOUT_EXTRA, "report", "--period", "2026-10", "--format", "md"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert md.returncode == 0 and "2026-10" in md.stdout, md.stderr  # the other formats need nothing more
