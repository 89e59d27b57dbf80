"""The hub's storage: one interface (:class:`HubStore`), two implementations.

SQLite (the default, nothing to install) for a handful of devices; PostgreSQL (psycopg 3, the
``datacap[hub-pg]`` extra) for fleets, chosen by ``[hub] database = "postgresql://…"``. The hub has
its own database, never a device's store; each backend has its own named, versioned migrations.

Every table is keyed by ``device`` first and every per-card fact by ``(device, card, …)``: a card
belongs to exactly one device, and the bytes of a card are the rows of its device that the card's
config claims (:func:`datacap.query.status.belongs`), so distributing by device (Citus) keeps each card's
facts on one node. PostgreSQL partitions ``usage`` by month.
"""

from __future__ import annotations

from pathlib import Path

from datacap.errors import ConfigError
from datacap.hub.store.base import (
    CardRow,
    CardStatusRow,
    DeviceRow,
    FleetFilter,
    HubStore,
    IngestOutcome,
    UsageTotal,
)

__all__ = ["CardRow", "CardStatusRow", "DeviceRow", "FleetFilter", "HubStore", "IngestOutcome", "UsageTotal",
           "default_hub_db", "open_hub_store"]


def default_hub_db() -> Path:
    return Path("/var/lib/datacap/hub.db")


def open_hub_store(database: str | Path | None) -> HubStore:
    """The store for ``[hub] database``: a ``postgresql://`` URL, or a SQLite file path (default)."""
    target = str(database or default_hub_db())
    if target.startswith(("postgresql://", "postgres://")):
        try:
            from datacap.hub.store.postgres import PostgresHubStore
        except ImportError as exc:  # psycopg is an extra
            raise ConfigError("hub.database: PostgreSQL needs psycopg 3: pip install 'datacap[hub-pg]' "
                              f"({exc})") from None
        return PostgresHubStore(target)
    from datacap.hub.store.sqlite import SqliteHubStore

    return SqliteHubStore(Path(target))
