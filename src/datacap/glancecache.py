"""What the CLI's fast path keeps between runs, so a glance never builds the pydantic models.

One directory per user ($XDG_CACHE_HOME/datacap, /var/cache/datacap for root), mode 0700, files
0600, each written whole (temp file + rename). Every entry carries the key it was made from and is
used only when the key matches: a stale, corrupt or unreadable entry is rebuilt the slow way, and a
cache directory that cannot be written only makes the next run slow again.

- config: the few facts the glance commands read (zone, week start, card names), keyed by the
  config file's path and bytes and datacap's code; a config is validated in full before it is cached.
- help: the typer app's own help text, keyed by the command line, the width and datacap's code.
- status: ``status --json``'s document, keyed by the store's write generation (a meta row every
  write transaction bumps), the config and the card, and never older than the caller's bound.
- plan check: its document, valid until the next cycle, bucket or pack boundary it shows.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from datacap import __version__

SAFE_KEYS = ("timezone", "week_start")


class LightConfig:
    """The validated config as the glance commands need it (no secrets: channels and tokens stay out)."""

    __slots__ = ("cards", "explicit", "key", "path", "timezone", "week_start")

    def __init__(self, path: Path, explicit: bool, key: str, timezone: str, week_start: str,
                 cards: tuple[str, ...]) -> None:
        self.path, self.explicit, self.key = path, explicit, key
        self.timezone, self.week_start, self.cards = timezone, week_start, cards

    @property
    def tz(self) -> ZoneInfo:
        from datacap.timeutil import load_zone

        return load_zone(self.timezone)

    @property
    def week_start_index(self) -> int:
        from datacap.timeutil import WEEKDAYS

        return WEEKDAYS.index(self.week_start)


def cache_dir() -> Path | None:
    """The cache directory, created 0700; None when there is no usable one."""
    if os.geteuid() == 0 and "XDG_CACHE_HOME" not in os.environ:
        base = Path("/var/cache/datacap")
    else:
        home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = Path(home) / "datacap"
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return base if os.access(base, os.W_OK | os.X_OK) else None


def code_stamp() -> str:
    """datacap's version and the size and mtime of each of its modules: changes with any upgrade."""
    root = Path(__file__).parent
    parts = [__version__]
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in sorted(entries, key=lambda e: e.name):
                if e.is_dir(follow_symlinks=False) and e.name != "__pycache__":
                    if e.name not in ("static", "vendor-src", "templates"):
                        stack.append(e.path)
                elif e.name.endswith(".py"):
                    st = e.stat()
                    parts.append(f"{e.path}:{st.st_size}:{st.st_mtime_ns}")
    return _digest(*parts)


def _digest(*parts: object) -> str:
    """Two independent 32-bit checksums and the length: hashlib would load OpenSSL (20 ms) per run."""
    data = "\0".join(map(str, parts)).encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}{len(data):x}"


def read_entry(name: str, key: str) -> Any:
    """The cached value under ``name`` if it was made from ``key``; None otherwise (or if unreadable)."""
    base = cache_dir()
    if base is None:
        return None
    try:
        doc = json.loads((base / name).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("key") != key:
        return None
    return doc.get("value")


def write_entry(name: str, key: str, value: Any) -> None:
    base = cache_dir()
    if base is None:
        return
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(dir=base, prefix=f".{name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"key": key, "value": value}, f, ensure_ascii=False)
        os.replace(tmp, base / name)
    except OSError:
        return


# --- config -------------------------------------------------------------------------------------


def light_config(path: Path | None) -> LightConfig:
    """The config at ``path`` (None: the default), validated in full once per content and code."""
    from datacap.paths import default_config_path

    explicit = path is not None or "DATACAP_CONFIG" in os.environ
    resolved = path or default_config_path()
    try:
        content = resolved.read_bytes()
    except FileNotFoundError:
        content = None
    except OSError:
        return _validate(path, resolved, explicit, "")  # load_config says what is wrong
    key = _digest(code_stamp(), resolved.absolute(), explicit, content.hex() if content is not None else "-")
    name = f"config-{_digest(resolved.absolute())}.json"
    cached = read_entry(name, key)
    if isinstance(cached, dict):
        try:
            return _light(resolved, explicit, key, cached)
        except (KeyError, TypeError, ValueError):
            pass
    light = _validate(path, resolved, explicit, key)
    facts = {"timezone": light.timezone, "week_start": light.week_start, "cards": list(light.cards),
             "zone_from_system": content is None or not _sets_timezone(content)}
    write_entry(name, key, facts)
    return light


def _sets_timezone(content: bytes) -> bool:
    import tomllib

    try:
        return "timezone" in tomllib.loads(content.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return True


def _light(path: Path, explicit: bool, key: str, facts: dict[str, Any]) -> LightConfig:
    zone = facts["timezone"]
    if facts["zone_from_system"]:  # the config leaves it to the system, which may have changed since
        from datacap.timeutil import system_timezone_name

        zone = system_timezone_name()
    return LightConfig(path, explicit, key, str(zone), str(facts["week_start"]),
                       tuple(str(c) for c in facts["cards"]))


def _validate(path: Path | None, resolved: Path, explicit: bool, key: str) -> LightConfig:
    """The slow way: the full pydantic model (raises ConfigError for a bad config, as the typer app does)."""
    from datacap.config import load_config

    cfg = load_config(path)
    return LightConfig(resolved, explicit, key, cfg.timezone, cfg.week_start, tuple(c.name for c in cfg.cards))


def default_db() -> Path:
    from datacap.store.db import default_db_path

    return default_db_path()


# --- help ---------------------------------------------------------------------------------------


def _help_key(argv: list[str]) -> tuple[str, str]:
    import shutil

    width = min(shutil.get_terminal_size().columns, 80)  # what click's help formatter wraps to
    key = _digest(code_stamp(), width, json.dumps(argv))
    return f"help-{_digest(json.dumps(argv), width)}.json", key


def cached_help(argv: list[str]) -> str | None:
    name, key = _help_key(argv)
    text = read_entry(name, key)
    return text if isinstance(text, str) else None


def capture_help(argv: list[str], run_full: Callable[[], None]) -> None:
    """Run the typer app for a help command line, print what it prints, keep it when it succeeded."""
    buffer = io.StringIO()
    real = sys.stdout
    sys.stdout = buffer
    code: Any = 0
    try:
        run_full()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stdout = real
    text = buffer.getvalue()
    real.write(text)
    real.flush()
    if code in (0, None) and text:
        name, key = _help_key(argv)
        write_entry(name, key, text)
    sys.exit(code)


# --- status and plan check ----------------------------------------------------------------------


def store_generation(db: Path) -> str | None:
    """The store's write generation (None for a store that has never recorded one)."""
    from datacap.store.db import open_read

    conn = open_read(db)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def status_doc(cfg: LightConfig, db: Path, card: str | None, max_age: float,
               text_width: int | None = None) -> tuple[dict[str, Any], str | None]:
    """``status --json`` for ``card`` (None: every card) now, from the cache when it is still true.

    With ``text_width``, also the human status as rich draws it at that width off a terminal
    (rendered once per document, so a piped `datacap status` needs no rich either).
    """
    generation = store_generation(db)
    name = f"status-{_digest(db.absolute(), cfg.path.absolute(), card)}.json"
    key = _digest(cfg.key, generation, cfg.timezone)
    now = time.time()
    cached = read_entry(name, key) if generation is not None else None
    if isinstance(cached, dict) and 0 <= now - float(cached.get("computed", -1e18)) < max_age:
        entry = cached
    else:
        entry = {"computed": now, "doc": _compute_status(cfg, db, card), "texts": {}}
    doc: dict[str, Any] = entry["doc"]
    text = None if text_width is None else entry["texts"].get(str(text_width))
    if text_width is not None and text is None:
        text = render_status_text(doc, text_width)
        entry["texts"][str(text_width)] = text
        cached = None
    if cached is None and generation is not None:
        write_entry(name, key, entry)
    return doc, text


def _compute_status(cfg: LightConfig, db: Path, card: str | None) -> dict[str, Any]:
    from datacap import status
    from datacap.config import load_config
    from datacap.store import Reader, open_read

    full = load_config(cfg.path if cfg.explicit else None)
    conn = open_read(db)
    try:
        return status.status_json(Reader(conn, full.tz, full.week_start_index), full, card)
    finally:
        conn.close()


def render_status_text(doc: dict[str, Any], width: int) -> str:
    """What ``console.print(render_status(card))`` for each card writes to a file (no terminal)."""
    from rich.console import Console

    from datacap.plans.render import render_status

    console = Console(file=io.StringIO(), width=width)
    for entry in doc["cards"]:
        console.print(render_status(entry))
    return console.file.getvalue()  # type: ignore[attr-defined]


def plan_check_doc(cfg: LightConfig, card: str | None) -> dict[str, Any]:
    """``plan check --json`` now: the cached document while no boundary it shows has passed."""
    name = f"plan-{_digest(cfg.path.absolute(), card)}.json"
    key = _digest(cfg.key, cfg.timezone)
    now = time.time()
    cached = read_entry(name, key)
    if isinstance(cached, dict) and float(cached.get("computed", 1e18)) <= now < float(cached.get("until", 0)):
        return dict(cached["doc"])
    from datacap import status
    from datacap.config import load_config
    from datacap.plans import plan_summary

    full = load_config(cfg.path if cfg.explicit else None)
    when = dt.datetime.now(full.tz)
    cards = [plan_summary(k, when, full.tz) for k in status.find_card(full, card)]
    doc = {"config": str(cfg.path), "timezone": full.timezone, "cards": cards}
    write_entry(name, key, {"computed": now, "until": _next_boundary(doc, when.timestamp()), "doc": doc})
    return doc


def _next_boundary(doc: dict[str, Any], now: float) -> float:
    """The first instant after ``now`` where a cycle, bucket or pack shown in ``doc`` starts or ends."""
    instants = []
    for card in doc["cards"]:
        for span in (card["cycle"], *card["buckets"]):
            for key in ("start", "end", "expires"):
                if span.get(key):
                    instants.append(dt.datetime.fromisoformat(span[key]).timestamp())
    later = [t for t in instants if t > now]
    return min(later) if later else now + 86400
