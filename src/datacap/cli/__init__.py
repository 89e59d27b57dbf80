"""The command line: the entry point, shared options and output, one module per command group.

Command modules are imported only when the command line names them (see entry.FEATURES).
"""


def main() -> None:
    """Console entry point (imports the app only when run)."""
    from datacap.cli.entry import main as run

    run()
