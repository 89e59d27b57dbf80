"""Flow bookkeeping: conntrack counters -> byte deltas per attribution, each byte counted once.

Pure logic, no I/O: the caller feeds decoded conntrack messages (events and dump entries) with the
time they were read, and an ``attribute`` callback that names who a flow belongs to. The rules:

- a flow's bytes are the growth of its counters since the last time datacap saw it, so a flow seen
  in dumps and then in DESTROY is never counted twice;
- a flow is remembered for ``finished_ttl`` seconds after DESTROY, so a dump entry read before the
  DESTROY but applied after it does not bring the flow back;
- a flow counts once (``flows``), in the bucket where datacap first saw it;
- flows that existed before datacap started only set a baseline: their earlier bytes are not ours;
- after a full dump, flows it did not contain are set aside: a late (re-delivered) DESTROY still
  finds their last counters; if none comes within ``finished_ttl``, their last bytes are lost.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from datacap.meter.ctnetlink import CtMessage, FlowKey
from datacap.model import AppIdentity, ClientIdentity

FIVE_MINUTES = 300


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who a flow belongs to. ``inbound``: the first packet came in on the uplink (orig = rx)."""

    interface: str
    app: AppIdentity | None = None
    client: ClientIdentity | None = None
    service: str | None = None
    inbound: bool = False
    # The remote end, to ask again for a service not known at NEW; not part of what usage is keyed by.
    remote: str | None = field(default=None, compare=False, hash=False)


@dataclass(slots=True)
class Usage:
    rx_bytes: int = 0
    tx_bytes: int = 0
    flows: int = 0


@dataclass(slots=True)
class FlowState:
    attribution: Attribution | None  # None: not on an uplink, ignored
    orig_bytes: int
    reply_bytes: int
    last_seen: float
    retry: bool = False  # the process was not found yet but its socket was: look again later
    predecessor: int | None = None  # start (ns) of an ended flow with the same key: its readings are stale


Attribute = Callable[[CtMessage], tuple[Attribution | None, bool]]


def bucket_of(now: float) -> int:
    second = int(now)
    return second - second % FIVE_MINUTES


class FlowTable:
    """Live flows and the usage not yet handed out, per (bucket, attribution)."""

    def __init__(self, finished_ttl: float = 120.0,
                 refine: Callable[[Attribution], Attribution] | None = None) -> None:
        self.finished_ttl = finished_ttl
        # Names can arrive just after a flow starts (the DNS answer is read a moment after the client
        # connects, a TLS name comes with the handshake): a flow without a service asks again.
        self.refine = refine
        self.live: dict[FlowKey, FlowState] = {}
        # Ended flows: key -> (forget after, start ns). Keys repeat: a client reuses a source port at
        # once and the kernel can reuse the flow's object (and so its id), so the start time tells a
        # late reading of the ended flow from its successor.
        self.finished: OrderedDict[FlowKey, tuple[float, int | None]] = OrderedDict()
        # Flows a dump no longer holds whose DESTROY has not arrived: the kernel keeps a dying flow
        # off its table until its DESTROY is delivered (reliable delivery after an overflow).
        self.vanished: OrderedDict[FlowKey, tuple[FlowState, float]] = OrderedDict()
        self.pending: dict[tuple[int, Attribution], Usage] = {}
        self.recent: dict[Attribution, Usage] = {}  # since the last rates() call
        self.lost_flows = 0
        self.duplicates_ignored = 0

    def _add(self, now: float, attribution: Attribution | None, orig: int, reply: int, flows: int) -> None:
        if attribution is None or (orig == 0 and reply == 0 and flows == 0):
            return
        rx, tx = (orig, reply) if attribution.inbound else (reply, orig)
        for usage in (self.pending.setdefault((bucket_of(now), attribution), Usage()),
                      self.recent.setdefault(attribution, Usage())):
            usage.rx_bytes += rx
            usage.tx_bytes += tx
            usage.flows += flows

    def _grow(self, state: FlowState, msg: CtMessage, now: float) -> None:
        self._grow_to(state, msg.orig_bytes, msg.reply_bytes, now)

    def _grow_to(self, state: FlowState, orig_bytes: int, reply_bytes: int, now: float) -> None:
        # Counters only grow; max() keeps a stale (older) reading from producing negative bytes.
        orig = max(0, orig_bytes - state.orig_bytes)
        reply = max(0, reply_bytes - state.reply_bytes)
        state.orig_bytes = max(state.orig_bytes, orig_bytes)
        state.reply_bytes = max(state.reply_bytes, reply_bytes)
        state.last_seen = now
        if self.refine is not None and state.attribution is not None and state.attribution.service is None:
            state.attribution = self.refine(state.attribution)
        self._add(now, state.attribution, orig, reply, 0)

    def _ended(self, key: FlowKey, start_ns: int | None) -> bool:
        """Is a reading with this key and start about a flow that already ended?"""
        ended = self.finished.get(key)
        return ended is not None and (start_ns is None or ended[1] is None or start_ns == ended[1])

    def _stale(self, state: FlowState, start_ns: int | None) -> bool:
        """Is a reading of the live flow's key really about its ended predecessor?"""
        return state.predecessor is not None and start_ns == state.predecessor

    def on_dump_counters(self, key: FlowKey, orig_bytes: int, reply_bytes: int, start_ns: int | None,
                         now: float) -> bool:
        """A dump entry of a known flow, from its counters alone; False: decode it, call on_dump_entry."""
        state = self.live.get(key)
        if state is None:
            if self._ended(key, start_ns):
                self.duplicates_ignored += 1
                return True
            return False
        if self._stale(state, start_ns):
            self.duplicates_ignored += 1
            return True
        if state.retry:
            return False
        self._grow_to(state, orig_bytes, reply_bytes, now)
        return True

    def baseline(self, msgs: Iterable[CtMessage], attribute: Attribute, now: float) -> None:
        """Flows present when datacap starts: remember their counters, count nothing."""
        for msg in msgs:
            attribution, retry = attribute(msg)
            self.live[msg.key] = FlowState(attribution, msg.orig_bytes, msg.reply_bytes, now, retry)

    def on_new(self, msg: CtMessage, attribute: Attribute, now: float) -> None:
        """A NEW event: the flow counts here; its first bytes (if the event carries any) too.

        The kernel sends one NEW per flow, so a NEW with the key of an ended flow is its successor.
        """
        key = msg.key
        if key in self.live:
            self.duplicates_ignored += 1
            return
        ended = self.finished.pop(key, None)
        attribution, retry = attribute(msg)
        state = FlowState(attribution, 0, 0, now, retry, ended[1] if ended else None)
        self.live[key] = state
        self._add(now, attribution, 0, 0, 1)
        self._grow(state, msg, now)

    def on_dump_entry(self, msg: CtMessage, attribute: Attribute, now: float) -> None:
        """One entry of a periodic or resync dump: bytes since the last reading."""
        key = msg.key
        state = self.live.get(key)
        if state is None:
            if self._ended(key, msg.start_ns):
                self.duplicates_ignored += 1
            else:  # its NEW event was lost (overflow): count it now, from zero
                self.on_new(msg, attribute, now)
            return
        if self._stale(state, msg.start_ns):
            self.duplicates_ignored += 1
            return
        if state.retry:
            attribution, state.retry = attribute(msg)
            if attribution is not None:
                state.attribution = attribution
        self._grow(state, msg, now)

    def on_destroy(self, msg: CtMessage, attribute: Attribute, now: float) -> None:
        """DESTROY: final counters; the flow is then forgotten except for its key and start."""
        key = msg.key
        state = self.live.get(key)
        if (state is None and self._ended(key, msg.start_ns)) or (state is not None
                                                                  and self._stale(state, msg.start_ns)):
            self.duplicates_ignored += 1
            return
        self.live.pop(key, None)
        if state is None and key in self.vanished:
            state = self.vanished.pop(key)[0]
            self.lost_flows -= 1
        if state is None:
            attribution, _retry = attribute(msg)
            state = FlowState(attribution, 0, 0, now)
            self._add(now, attribution, 0, 0, 1)
        self._grow(state, msg, now)
        self.finished[key] = (now + self.finished_ttl, msg.start_ns)
        self.finished.move_to_end(key)

    def sweep(self, present: set[FlowKey], dump_started: float, now: float) -> None:
        """After a complete dump that began at ``dump_started``: drop flows it no longer holds."""
        gone = [key for key, state in self.live.items()
                if key not in present and state.last_seen < dump_started]
        for key in gone:
            self.vanished[key] = (self.live.pop(key), now + self.finished_ttl)
            self.lost_flows += 1
        while self.finished:
            key, (expiry, _start) = next(iter(self.finished.items()))
            if expiry > now:
                break
            self.finished.popitem(last=False)
        while self.vanished:
            key, (_state, expiry) = next(iter(self.vanished.items()))
            if expiry > now:
                break
            self.vanished.popitem(last=False)

    def drain(self) -> dict[tuple[int, Attribution], Usage]:
        """Usage since the previous drain, per (5-minute bucket, attribution)."""
        out, self.pending = self.pending, {}
        return out

    def drain_recent(self) -> dict[Attribution, Usage]:
        out, self.recent = self.recent, {}
        return out
