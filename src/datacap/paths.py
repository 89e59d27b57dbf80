"""Where datacap's files live by default, in a module light enough for the CLI's fast path."""

from __future__ import annotations

import os
from pathlib import Path


def default_config_path() -> Path:
    """``$DATACAP_CONFIG``, else /etc/datacap/config.toml for root, else the XDG config dir."""
    if env := os.environ.get("DATACAP_CONFIG"):
        return Path(env)
    if os.geteuid() == 0:
        return Path("/etc/datacap/config.toml")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "datacap" / "config.toml"
