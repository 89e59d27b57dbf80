"""Feature commands, each module registering its commands on the main typer app."""
