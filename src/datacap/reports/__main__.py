"""``python -m datacap.reports report ...``: the datacap CLI (``report`` is one of its commands)."""

from datacap.cli import main

main()
