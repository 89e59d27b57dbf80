"""The wire contract between a device and the hub (both sides import this module).

A device POSTs one gzip-compressed JSON :class:`Batch` to ``<hub url>/api/v1/ingest`` with
``Authorization: Bearer <device token>``, ``Content-Type: application/json`` and
``Content-Encoding: gzip``. The hub answers JSON:

* ``seq`` <= last acknowledged: 200 ``{"acked": last, "duplicate": true}``, nothing applied;
* ``seq`` == last + 1: applied in one transaction with the sequence bump, 200 ``{"acked": seq}``;
* ``seq`` > last + 1: 409 ``{"expected": last + 1}`` (the device resends from there);
* bad or revoked token 401, body too large 413, rate-limited 429 with ``Retry-After``, invalid
  batch 422 ``{"error": reason}``.

``usage`` and ``attribution`` rows are deltas: bytes added since the previous batch for that key;
the hub adds them up. ``calibrations``, ``texts`` and ``alerts`` are events the hub upserts by
(device, id). ``cards`` is the device's current state and replaces the hub's copy.

Changes to this module are additive only (new optional fields), so older peers keep working: a
hub ignores fields it does not know. Added since the first draft: ``UsageRow.rx_packets/tx_packets``
and ``Host.interfaces`` (link type and first-seen instant), so the hub's plan engine counts framing
overhead (``l2_overhead = "auto"``) and knows when metering began exactly as the device does;
``AttributionRow.card``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import zlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from datacap.errors import InputError

VERSION = 1
INGEST_PATH = "/api/v1/ingest"
MAX_USAGE_ROWS = 5_000
MAX_ATTRIB_ROWS = 5_000
MAX_COMPRESSED_BYTES = 1 << 20          # 1 MiB on the wire
MAX_DECOMPRESSED_BYTES = 64 << 20       # a gzip bomb is refused before it fills the hub's memory
USAGE_SECONDS = 300                     # usage rows are 5-minute buckets
ATTRIB_SECONDS = 3600                   # attribution rows are hourly buckets

NonNegative = Annotated[int, Field(ge=0, strict=True)]


class BatchTooLarge(InputError):
    """The compressed body is over :data:`MAX_COMPRESSED_BYTES` (HTTP 413)."""


class InvalidBatch(InputError):
    """The body is not a valid batch (HTTP 422); ``str()`` is the reason given to the device."""


class _Wire(BaseModel):
    # Unknown fields are ignored, not refused: a newer device's additive fields never break an older hub.
    model_config = ConfigDict(extra="ignore", frozen=True)


class InterfaceState(_Wire):
    name: str
    link_type: str | None = None        # 'ether', 'rawip', 'ppp', ... (the device's l2_overhead = "auto")
    first_seen: NonNegative | None = None  # unix seconds the device first metered it


class Host(_Wire):
    hostname: str
    datacap: str                        # the device's datacap version
    timezone: str                       # IANA name: the zone the device sums its days in
    interfaces: list[InterfaceState] = []  # those this batch's usage rows name: state to upsert


class Health(_Wire):
    uptime_s: NonNegative               # seconds since `datacap run` started
    last_sample: dt.datetime | None     # the last successful flush of the meter to the store
    store_bytes: NonNegative            # the store's size on disk (database + WAL)
    write_errors: NonNegative           # failed store writes since the daemon started
    pending_batches: NonNegative        # batches not yet acknowledged, this one included


class Card(_Wire):
    name: str
    label: str | None = None
    iccid: str | None = None            # the SIM's ICCID when known (the active SIM, else the config's)
    carrier: str | None = None          # the operator's name when known (ModemManager)
    interfaces: list[str] = []
    # The card's [[cards]] table as written in the device's config, JSON-serialised with the same
    # keys (dates and times as ISO strings): validate it with :func:`plan_config`.
    plan: dict[str, Any]


class UsageRow(_Wire):
    start: NonNegative                  # unix seconds, a multiple of 300
    interface: str
    # The card the bytes were stamped with when metered (the SIM active in a modem); None: charged by
    # the config (the card whose interfaces match), the same rule as datacap.query.status.belongs.
    card: str | None = None
    rx: NonNegative
    tx: NonNegative
    rx_packets: NonNegative = 0
    tx_packets: NonNegative = 0

    @field_validator("start")
    @classmethod
    def _five_minutes(cls, value: int) -> int:
        if value % USAGE_SECONDS:
            raise ValueError(f"expected a multiple of {USAGE_SECONDS}, found {value}")
        return value


class AttributionRow(_Wire):
    start: NonNegative                  # unix seconds, a multiple of 3600
    interface: str
    kind: Literal["app", "client", "service"]
    name: str
    rx: NonNegative
    tx: NonNegative
    card: str | None = None             # as UsageRow.card (additive to the first draft of the contract)

    @field_validator("start")
    @classmethod
    def _hour(cls, value: int) -> int:
        if value % ATTRIB_SECONDS:
            raise ValueError(f"expected a multiple of {ATTRIB_SECONDS}, found {value}")
        return value


class CalibrationEvent(BaseModel):
    """A carrier figure the device recorded; any other stored field rides along."""

    model_config = ConfigDict(extra="allow", frozen=True)
    id: NonNegative                     # device-local
    card: str
    bucket: str | None = None
    at: dt.datetime
    used_bytes: NonNegative
    source: str


class TextEvent(_Wire):
    """A carrier text (SMS or USSD reply) the device received and read."""

    id: NonNegative
    at: dt.datetime
    sender: str
    text: str
    card: str | None = None


class AlertEvent(_Wire):
    id: NonNegative
    at: dt.datetime
    card: str | None = None
    rule: str
    level: str
    message: str


class Batch(_Wire):
    v: Literal[1] = 1
    device: str = Field(min_length=1)
    seq: int = Field(ge=1, strict=True)
    created: dt.datetime
    host: Host
    health: Health
    cards: list[Card] = []
    usage: list[UsageRow] = Field(default=[], max_length=MAX_USAGE_ROWS)
    attribution: list[AttributionRow] = Field(default=[], max_length=MAX_ATTRIB_ROWS)
    calibrations: list[CalibrationEvent] = []
    texts: list[TextEvent] = []
    alerts: list[AlertEvent] = []


class Ack(_Wire):
    acked: int
    duplicate: bool = False


class Conflict(_Wire):
    expected: int


def iso(epoch: float) -> str:
    """A UTC instant as the protocol writes it: ``2026-11-30T12:00:00Z``."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def encode(batch: Batch | dict[str, Any]) -> bytes:
    """The request body: compact JSON, gzip-compressed (mtime 0, so equal batches give equal bytes)."""
    doc = batch.model_dump(mode="json", exclude_none=False) if isinstance(batch, Batch) else batch
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return gzip.compress(raw, compresslevel=6, mtime=0)


def decode(body: bytes, *, gzipped: bool = True) -> Batch:
    """Parse and validate a request body; raises BatchTooLarge (413) or InvalidBatch (422)."""
    if len(body) > MAX_COMPRESSED_BYTES:
        raise BatchTooLarge(f"batch is {len(body)} bytes compressed, at most {MAX_COMPRESSED_BYTES}")
    raw = _gunzip(body) if gzipped else body
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidBatch(f"body is not JSON: {exc}") from None
    try:
        return Batch.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InvalidBatch(f"{where}: {first['msg']}{more}") from None


def _gunzip(body: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(body, MAX_DECOMPRESSED_BYTES)
    except zlib.error as exc:
        raise InvalidBatch(f"body is not gzip: {exc}") from None
    if inflater.unconsumed_tail:
        raise BatchTooLarge(f"batch is over {MAX_DECOMPRESSED_BYTES} bytes uncompressed")
    return raw


def plan_config(card: Card) -> Any:
    """The card's plan as the device's config model (:class:`datacap.plans.CardConfig`).

    Raises InvalidBatch with pydantic's first error when the plan does not validate.
    """
    from datacap.plans.config import CardConfig

    try:
        return CardConfig.model_validate(card.plan)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InvalidBatch(f"cards[{card.name}].plan.{where}: {first['msg']}") from None
