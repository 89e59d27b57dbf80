"""The command line: the entry point, shared options and output, one module per command group.

``glance`` answers the glance commands without typer, pydantic or rich and hands every other command
line to the typer app in ``entry``, whose command modules are imported only when named (entry.FEATURES).
"""


def main() -> None:
    """Console entry point: the fast path, else the typer app."""
    from datacap.cli.glance import main as run

    run()
