"""``datacap serve``: the dashboard, JSON API and metrics in the foreground, without privileges."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from datacap.cli.options import ConfigOpt, DbOpt
from datacap.config import load_config
from datacap.errors import DatacapError
from datacap.store import default_db_path
from datacap.web.auth import refuse_token_argument, resolve_token
from datacap.web.server import address, build_server

log = logging.getLogger("datacap.web")


def serve(db: DbOpt = None, config: ConfigOpt = None,
          listen: Annotated[str | None, typer.Option("--listen", help="HOST:PORT (default web.listen, "
                                                     "127.0.0.1:8765)")] = None,
          token_file: Annotated[Path | None, typer.Option("--token-file", help="a file holding the access token "
                                                          "(or set DATACAP_WEB_TOKEN); required beyond "
                                                          "loopback")] = None,
          token: Annotated[str | None, typer.Option("--token", hidden=True,
                                                    help="refused: use --token-file")] = None) -> None:
    """Serve the dashboard, JSON API (/api/v1) and Prometheus metrics (/metrics).

    Example: datacap serve --listen 0.0.0.0:8765 --token-file /etc/datacap/web-token
    """
    refuse_token_argument(token)
    cfg = load_config(config)
    db_path = db or default_db_path()
    from datacap.config import default_config_path
    from datacap.privileges import secret_warnings

    for line in secret_warnings(cfg, config or default_config_path()):
        log.warning("%s", line)
    server = build_server(db_path, cfg, listen, resolve_token(cfg, token_file))
    _drop_privileges(db_path)
    typer.echo(f"datacap dashboard: {address(server.config.host, server.config.port)}  (Ctrl-C to stop)")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal against the handler that
    # was there before it: with these no-op handlers in place that ends as a clean exit 0, not as a
    # KeyboardInterrupt traceback (Ctrl-C) or a death by signal (systemd stop).
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    except OSError as exc:  # the port is taken, or the address is not ours
        raise DatacapError(f"cannot listen on {server.config.host}:{server.config.port}: {exc.strerror}") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:  # uvicorn logs why (the port is taken) and returns without raising
        raise DatacapError(f"the dashboard could not listen on {server.config.host}:{server.config.port}")


def _drop_privileges(db_path: Path) -> None:
    """``serve`` needs no privilege: as root it becomes the datacap user when that user can read the
    store, and in any case holds no capability (a port below 1024 is not supported as root either)."""
    from datacap import privileges

    if os.geteuid() == 0:
        user = privileges.service_user()
        if user is not None and privileges.can_read_store(user, db_path):
            privileges.switch_user(user, keep=())
            return
        log.warning("serving as root without capabilities: create the %s user (scripts/install.sh does) "
                    "and give it the store, or run `datacap serve` as an ordinary user",
                    privileges.SERVICE_USER)
    privileges.drop_all()
