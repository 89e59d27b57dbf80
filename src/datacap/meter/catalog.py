"""The service catalog: which domain names belong to which service people recognise.

The shipped ``services.toml`` lists services (YouTube, Douyin, WeChat, Netflix, system updates...)
with a category and the domain suffixes that identify them; a user's ``[services]`` config merges
over it. The longest matching suffix wins, so ``music.163.com`` can be NetEase Music while
``163.com`` stays NetEase.
"""

from __future__ import annotations

import contextlib
import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from datacap.errors import ConfigError

__all__ = ["CATEGORIES", "DOMAIN_LABEL_RE", "Catalog", "Service", "load_catalog"]

CATEGORIES = frozenset({
    "video", "music", "social", "messaging", "shopping", "search", "maps", "news", "gaming",
    "update", "cloud", "cdn", "productivity", "ads", "other",
})
_SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,63}$")
DOMAIN_LABEL_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


@dataclass(frozen=True, slots=True)
class Service:
    """A service people recognise, with its category and the domain suffixes that identify it."""

    name: str
    category: str
    suffixes: tuple[str, ...]


class Catalog:
    """Domain suffix -> service; the longest matching suffix wins."""

    def __init__(self, services: Iterable[Service]) -> None:
        self.services: dict[str, Service] = {s.name: s for s in services}
        self._by_suffix: dict[str, str] = {}
        for service in self.services.values():
            for suffix in service.suffixes:
                self._by_suffix[suffix] = service.name

    def __len__(self) -> int:
        return len(self.services)

    def match(self, domain: str) -> Service | None:
        """The service whose longest suffix equals ``domain`` or ends it at a label boundary."""
        name = domain.lower().rstrip(".")
        while name:
            hit = self._by_suffix.get(name)
            if hit is not None:
                return self.services[hit]
            _, dot, name = name.partition(".")
            if not dot:
                break
        return None

    def category_of(self, service: str) -> str | None:
        found = self.services.get(service)
        return found.category if found else None


def _line_of(text: str | None, name: str) -> str:
    """Best-effort ``:LINE`` of a service's key in a TOML text (tomllib does not report positions)."""
    if not text:
        return ""
    pattern = re.compile(rf"""^\s*(\[services\.)?["']?{re.escape(name)}["']?\s*(\]|=)""")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return f":{number}"
    return ""


def _normalize_suffix(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a domain suffix string like 'example.com', found {value!r}")
    text = value.strip().lower()
    if "/" in text or ":" in text:
        raise ConfigError(f"{where}: expected a bare domain suffix like 'example.com' (no scheme, port or "
                          f"path), found {value!r}")
    # "*.example.com" and ".example.com" say what a suffix already means: the domain and its subdomains.
    text = text.removeprefix("*.").removeprefix(".").removesuffix(".")
    if not text.isascii():  # names travel in DNS as punycode: "例子.中国" is "xn--fsqu00a.xn--fiqs8s"
        with contextlib.suppress(UnicodeError):  # if it cannot be encoded, it is reported below
            text = text.encode("idna").decode("ascii")
    labels = text.split(".")
    if not text or len(text) > 253 or not all(DOMAIN_LABEL_RE.match(label) for label in labels):
        raise ConfigError(f"{where}: expected a domain suffix made of labels of letters, digits and '-' "
                          f"like 'example.com', found {value!r}")
    return text


def _parse_entry(name: str, value: Any, where: str,
                 shipped: Service | None) -> tuple[str, list[str], bool]:
    """One ``[services]`` entry -> (category, suffixes, replace)."""
    if isinstance(value, list):
        category, raw, replace = (shipped.category if shipped else "other"), value, False
    elif isinstance(value, dict):
        unknown = set(value) - {"suffixes", "category", "replace"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; expected 'suffixes', "
                              f"'category' and 'replace'")
        raw = value.get("suffixes", [])
        category = value.get("category", shipped.category if shipped else "other")
        replace = value.get("replace", False)
        if not isinstance(replace, bool):
            raise ConfigError(f"{where}.replace: expected true or false, found {replace!r}")
        if not isinstance(raw, list):
            raise ConfigError(f"{where}.suffixes: expected a list of domain suffixes, found {raw!r}")
    else:
        raise ConfigError(f"{where}: expected a list of domain suffixes like [\"example.com\"] or a table "
                          f"with 'suffixes' and 'category', found {value!r}")
    if category not in CATEGORIES:
        raise ConfigError(f"{where}.category: expected one of {', '.join(sorted(CATEGORIES))}, "
                          f"found {category!r}")
    suffixes = [_normalize_suffix(item, f"{where}.suffixes[{i}]") for i, item in enumerate(raw)]
    return category, suffixes, replace


def _read_services_file(path: Path) -> tuple[Any, str]:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the service catalog: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if "services" not in data or not isinstance(data["services"], dict):
        raise ConfigError(f"{path}: expected a [services] table mapping service names to domain suffixes")
    return data["services"], text


def _merge(base: dict[str, Service], table: Mapping[str, Any], source: str, text: str | None,
           *, shipped: bool) -> dict[str, Service]:
    merged = dict(base)
    claimed: dict[str, str] = {}  # suffix -> service, within this table: a suffix in two entries is a typo
    for name, value in table.items():
        where = f"{source}{_line_of(text, name)}: services.{name}"
        if not isinstance(name, str) or not _SERVICE_NAME_RE.match(name):
            raise ConfigError(f"{where}: expected a service name of lowercase letters, digits and "
                              f"'-_.+' (at most 64), found {name!r}")
        old = merged.get(name)
        category, suffixes, replace = _parse_entry(name, value, where, old)
        if shipped and not suffixes:
            raise ConfigError(f"{where}: the shipped catalog needs at least one suffix per service")
        for suffix in suffixes:
            if claimed.get(suffix, name) != name:
                raise ConfigError(f"{where}: suffix {suffix!r} is already listed for service "
                                  f"{claimed[suffix]!r} in the same file")
            claimed[suffix] = name
        keep = () if (replace or old is None) else old.suffixes
        merged[name] = Service(name, category, tuple(dict.fromkeys((*keep, *suffixes))))
    # A suffix the user gave to one service leaves every other service, so user entries override.
    for suffix, owner in claimed.items():
        for other, service in list(merged.items()):
            if other != owner and suffix in service.suffixes:
                merged[other] = Service(other, service.category,
                                        tuple(s for s in service.suffixes if s != suffix))
    return {n: s for n, s in merged.items() if s.suffixes}


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, Service]:
    text = resources.files("datacap.meter").joinpath("services.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    return _merge({}, data["services"], "datacap/meter/services.toml", text, shipped=True)


def load_catalog(extra: Mapping[str, Any] | Path | None = None, *, source: str = "config") -> Catalog:
    """The shipped catalog with a user's ``[services]`` merged over it.

    ``extra`` is the ``[services]`` table as a mapping (``source`` names where it came from, for
    errors), or a TOML file with a ``[services]`` table. Each entry is either a list of suffixes,
    added to the service of that name (new or shipped), or a table
    ``{suffixes = [...], category = "video", replace = false}``; ``replace = true`` drops the shipped
    suffixes of that service, and ``replace = true`` with no suffixes removes the service. A suffix a
    user lists moves to the user's service. Raises :class:`ConfigError` naming the entry.
    """
    services = _shipped()
    if extra is None:
        return Catalog(services.values())
    if isinstance(extra, Path):
        table, text = _read_services_file(extra)
        return Catalog(_merge(services, table, str(extra), text, shipped=False).values())
    if not isinstance(extra, Mapping):
        raise ConfigError(f"{source}: [services] must be a table of service names, found {extra!r}")
    return Catalog(_merge(services, extra, source, None, shipped=False).values())

