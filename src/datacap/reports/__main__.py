"""``python -m datacap.reports report ...``: the datacap CLI with ``report`` registered (for tests and
for builds where the integrator has not registered it yet)."""

from datacap.cli import app, main
from datacap.reports.cli import report

if not any(cmd.name == "report" or getattr(cmd.callback, "__name__", "") == "report"
           for cmd in app.registered_commands):
    app.command()(report)

main()
