# SPDX-License-Identifier: BSD-3-Clause
"""The auto-scaler's distributed queue of scale requests, on Redis Streams.

Its keys are keys.py's (the whole Redis layout):
  onvm:scaleq:<host>             stream of requests for <host>, one entry per request
                                 (fields: see ScaleRequest.to_fields), read through the
                                 consumer group "onvm-scaler"; the consumer is <host>'s
                                 daemon, named after the host
  onvm:pending                   sorted set: "<host> <entry id>" of each entry not finished
                                 -> ms queued on that host (what stuck() reads)
  onvm:req:<id>                  hash: state (queued | started | done | failed), host,
                                 entry (stream entry id), attempt, detail, updated_ms;
                                 expires a day after its last change
  onvm:req:<id>:begun            SET NX by the first begin() of request <id> (any attempt),
                                 value "<host>/<attempt>"; expires after a day
  onvm:req:<id>:move:<attempt>   lock of the one mover of (<id>, <attempt>), expires in 60 s
  onvm:events                    stream of events (kind, ms, free fields), ~1000 newest kept

Life of a request: enqueue() puts it on its host's stream (state queued); that
host's daemon read()s it, calls begin(), marks it started, does the work and
ack()s it (the entry is deleted, state done, or failed if it gave up for good).
An entry delivered but never acked (the daemon died) is delivered again to the
same consumer on its next read(), before any new entry.  Requests not finished
long after they were queued are stuck(); those on the stream of a host that
stopped heartbeating are orphans(), and move() re-places each one, with
attempt + 1, on a live host.

Idempotence contract: a request may be delivered more than once (a restarted
daemon, a move after a host was only thought dead), but must start at most one
instance.  Before starting anything, the consumer calls begin(r, req): True means
it is the first for this request id whatever the attempt, and it may start the
instance, labelled with the request id.  False means someone already began it:
the caller must not start another instance, but look for the one labelled with
the request id (adopt it once its start finished) and ack the request.

The client is a redis-py client (RESP2, decode_responses either way); Redis
errors (redis.ConnectionError...) propagate to the caller.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from . import keys

GROUP = keys.GROUP
STATES = ("queued", "started", "done", "failed")
KINDS = ("out", "in")
STATE_TTL_MS = 24 * 3600 * 1000
MOVE_LOCK_MS = 60_000
EVENTS_MAXLEN = 1000

_FIELDS = ("id", "service", "host", "origin", "kind", "attempt", "created_ms", "instance")


stream_key = keys.stream
state_key = keys.request
EVENTS_KEY = keys.EVENTS


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class ScaleRequest:
    """ "out": start one instance of ``service`` on ``host``; "in": drain and stop
    ``instance`` (of ``service``) on ``host``.  ``created_ms`` is when it was put
    on its current host's queue (reset by move(), which counts ``attempt``)."""

    id: str
    service: str
    host: str
    origin: str
    kind: str = "out"
    attempt: int = 1
    created_ms: int = 0
    instance: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError("scale request kind must be one of %s, not %r" % (KINDS, self.kind))
        if self.kind == "in" and not self.instance:
            raise ValueError("a scale-in request names the instance to stop")
        if self.attempt < 1:
            raise ValueError("attempt counts from 1")

    def to_fields(self) -> dict[str, str]:
        return {f: str(getattr(self, f)) for f in _FIELDS}

    @classmethod
    def from_fields(cls, fields: Mapping[bytes, bytes] | Mapping[str, str]) -> ScaleRequest:
        """Inverse of to_fields (raises KeyError or ValueError on a malformed entry)."""
        d = {_s(k): _s(v) for k, v in fields.items()}
        return cls(
            id=d["id"],
            service=d["service"],
            host=d["host"],
            origin=d["origin"],
            kind=d["kind"],
            attempt=int(d["attempt"]),
            created_ms=int(d["created_ms"]),
            instance=d.get("instance", ""),
        )


def new_request(
    service: str, host: str, origin: str, kind: str = "out", instance: str = "", now_ms: int | None = None
) -> ScaleRequest:
    return ScaleRequest(
        id=uuid.uuid4().hex,
        service=service,
        host=host,
        origin=origin,
        kind=kind,
        created_ms=_now_ms() if now_ms is None else now_ms,
        instance=instance,
    )


def _flat(fields: Mapping[str, str]) -> list[str]:
    return [x for kv in fields.items() for x in kv]


# XADD, the state hash and the pending index in one atomic step, so that
# the hash names the entry.
# KEYS: stream, state hash, pending index; ARGV: host, attempt, updated_ms, ttl_ms, field, value...
_ENQUEUE = """
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
redis.call('HSET', KEYS[2], 'state', 'queued', 'host', ARGV[1], 'entry', id,
           'attempt', ARGV[2], 'detail', '', 'updated_ms', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1] .. ' ' .. id)
return id
"""

# Re-place an orphan, if it is still there and not done (else nil).
# KEYS: dead host's stream, new host's stream, state hash, pending index;
# ARGV: entry id, group, to_host, attempt, updated_ms, ttl_ms, detail, the old entry's index
# member, field, value...
_MOVE = """
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return false end
if redis.call('HGET', KEYS[3], 'state') == 'done' then return false end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 9))
redis.call('ZREM', KEYS[4], ARGV[8])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3] .. ' ' .. id)
redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[3], 'state', 'queued', 'host', ARGV[3], 'entry', id,
           'attempt', ARGV[4], 'detail', ARGV[7], 'updated_ms', ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return id
"""


def enqueue(r: Any, req: ScaleRequest, now_ms: int | None = None) -> str:
    """Queue ``req`` for its host; returns the stream entry id."""
    now = req.created_ms if now_ms is None else now_ms
    entry = r.eval(
        _ENQUEUE,
        3,
        stream_key(req.host),
        state_key(req.id),
        keys.PENDING,
        req.host,
        req.attempt,
        now,
        STATE_TTL_MS,
        *_flat(req.to_fields()),
    )
    return _s(entry)


def _ensure_group(r: Any, host: str) -> None:
    """The group reads from the start of the stream: requests queued before the
    host's daemon first read (or after Redis lost the group) are not skipped."""
    from redis.exceptions import ResponseError

    try:
        r.xgroup_create(stream_key(host), GROUP, id="0", mkstream=True)
    except ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


def _readgroup(r: Any, host: str, last_id: str, count: int, block_ms: int | None) -> list[Any]:
    from redis.exceptions import ResponseError

    for again in (True, False):
        try:
            resp = r.xreadgroup(GROUP, host, {stream_key(host): last_id}, count=count, block=block_ms)
        except ResponseError as e:
            if "NOGROUP" not in str(e) or not again:
                raise
            _ensure_group(r, host)
            continue
        return [(entry, fields) for _stream, entries in resp or [] for entry, fields in entries]
    raise AssertionError("unreachable")


def read(
    r: Any, host: str, block_ms: int | None = 1000, count: int = 1, pending: bool = True
) -> list[tuple[str, ScaleRequest]]:
    """Up to ``count`` requests for ``host`` as (entry id, request), as consumer
    ``host``: first those delivered to it before and never acked (unless
    ``pending`` is False: a daemon that acks all it reads asks once, after it
    starts or fails), then new ones (waiting up to ``block_ms`` for one; None:
    not at all).  An entry that does not parse is acked and deleted (it would
    be delivered again forever)."""
    phases = (("0", None), (">", block_ms)) if pending else ((">", block_ms),)
    for last_id, block in phases:
        while True:
            out: list[tuple[str, ScaleRequest]] = []
            bad: list[str] = []
            for raw_id, fields in _readgroup(r, host, last_id, count, block):
                entry = _s(raw_id)
                try:
                    out.append((entry, ScaleRequest.from_fields(fields or {})))
                except (KeyError, ValueError):
                    bad.append(entry)  # malformed, or deleted while pending
            if bad:
                p = r.pipeline(transaction=True)
                p.xack(stream_key(host), GROUP, *bad)
                p.xdel(stream_key(host), *bad)
                p.execute()
            if out:
                return out
            if not bad:
                break  # nothing (more) pending / nothing new within block_ms
    return []


def state(r: Any, req_id: str) -> dict[str, str] | None:
    h = r.hgetall(state_key(req_id))
    return {_s(k): _s(v) for k, v in h.items()} if h else None


def mark(r: Any, req_id: str, state: str, detail: str = "", now_ms: int | None = None) -> None:
    """Set the state of a request (typically started, or failed while it will be retried)."""
    if state not in STATES:
        raise ValueError("request state must be one of %s, not %r" % (STATES, state))
    p = r.pipeline(transaction=True)
    p.hset(
        state_key(req_id),
        mapping={"state": state, "detail": detail, "updated_ms": _now_ms() if now_ms is None else now_ms},
    )
    p.pexpire(state_key(req_id), STATE_TTL_MS)
    p.execute()


def ack(
    r: Any,
    host: str,
    entry_id: str,
    req: ScaleRequest,
    detail: str = "",
    final: str = "done",
    now_ms: int | None = None,
) -> None:
    """The request is finished: its entry leaves ``host``'s stream and its state
    becomes ``final`` ("done", or "failed" when it is given up for good), atomically."""
    if final not in ("done", "failed"):
        raise ValueError("a request ends done or failed, not %r" % final)
    p = r.pipeline(transaction=True)
    p.xack(stream_key(host), GROUP, entry_id)
    p.xdel(stream_key(host), entry_id)
    p.zrem(keys.PENDING, _member(host, entry_id))
    p.hset(
        state_key(req.id),
        mapping={
            "state": final,
            "host": host,
            "entry": entry_id,
            "attempt": req.attempt,
            "detail": detail,
            "updated_ms": _now_ms() if now_ms is None else now_ms,
        },
    )
    p.pexpire(state_key(req.id), STATE_TTL_MS)
    p.execute()


def settle(r: Any, timeout_ms: int = 500) -> int:
    """When ``r`` is a client of a replicated view (its connection pool asks
    sentinels for the primary), wait until a replica has what was written
    on this connection (WAIT 1), at most ``timeout_ms``: a request queued or
    begun is then not lost if the primary dies the next moment.  Returns
    the replicas that have it (0 at once for a single Redis)."""
    from redis.sentinel import SentinelConnectionPool

    if not isinstance(getattr(r, "connection_pool", None), SentinelConnectionPool):
        return 0
    return int(r.execute_command("WAIT", 1, timeout_ms))


def begin(r: Any, req: ScaleRequest) -> bool:
    """True for the first caller for this request id (whatever the attempt),
    False for every later one: see the idempotence contract above."""
    return bool(
        r.set(keys.request_begun(req.id), "%s/%d" % (req.host, req.attempt), nx=True, px=STATE_TTL_MS)
    )


def _member(host: str, entry: str) -> str:
    """A stream entry's member in the pending index."""
    return "%s %s" % (host, entry)


def stuck(r: Any, timeout_ms: int, now_ms: int) -> list[tuple[str, str, ScaleRequest]]:
    """(host, entry id, request) of every entry not finished, queued on its
    host more than ``timeout_ms`` before ``now_ms``, by host, then entry id:
    one read of the pending index, as long as the answer.  Entries that are
    gone leave the index on the way, and so do those of a request that is
    done (a second delivery of one that was moved and carried out: deleted)."""
    members = [_s(m) for m in r.zrangebyscore(keys.PENDING, "-inf", now_ms - timeout_ms)]
    if not members:
        return []
    where = [tuple(m.split(" ", 1)) for m in members]
    p = r.pipeline(transaction=False)
    for host, entry in where:
        p.xrange(stream_key(host), entry, entry)
    got = p.execute()
    found: list[tuple[str, str, ScaleRequest]] = []
    gone: list[str] = []
    for m, (host, entry), rows in zip(members, where, got, strict=True):
        try:
            found.append((host, entry, ScaleRequest.from_fields(rows[0][1])))
        except (IndexError, KeyError, ValueError):
            gone.append(m)  # acked and deleted, moved, or malformed: nothing left to move
    done: list[tuple[str, str]] = []
    if found:
        p = r.pipeline(transaction=False)
        for _h, _e, req in found:
            p.hget(state_key(req.id), "state")
        states = p.execute()
        done = [
            (h, e)
            for (h, e, _q), st in zip(found, states, strict=True)
            if st is not None and _s(st) == "done"
        ]
        found = [o for o, st in zip(found, states, strict=True) if st is None or _s(st) != "done"]
    if gone or done:
        p = r.pipeline(transaction=False)
        p.zrem(keys.PENDING, *gone, *(_member(h, e) for h, e in done))
        for h, e in done:
            p.xdel(stream_key(h), e)
        p.execute()
    return sorted(found, key=lambda o: (o[0], o[1]))


def orphans(
    r: Any, alive: Collection[str], timeout_ms: int, now_ms: int
) -> list[tuple[str, str, ScaleRequest]]:
    """stuck() requests whose host is not in ``alive``."""
    live = set(alive)
    return [o for o in stuck(r, timeout_ms, now_ms) if o[0] not in live]


def move(
    r: Any, from_host: str, entry_id: str, req: ScaleRequest, to_host: str, now_ms: int
) -> ScaleRequest | None:
    """Re-place orphan ``entry_id`` of ``from_host`` on ``to_host`` as the next
    attempt (created_ms = now_ms); returns the new request, or None if another
    mover took this (id, attempt) or the entry is gone or done meanwhile."""
    if not r.set(keys.request_move(req.id, req.attempt), to_host, nx=True, px=MOVE_LOCK_MS):
        return None
    new = replace(req, host=to_host, attempt=req.attempt + 1, created_ms=now_ms)
    entry = r.eval(
        _MOVE,
        4,
        stream_key(from_host),
        stream_key(to_host),
        state_key(req.id),
        keys.PENDING,
        entry_id,
        GROUP,
        to_host,
        new.attempt,
        now_ms,
        STATE_TTL_MS,
        "moved from %s" % from_host,
        _member(from_host, entry_id),
        *_flat(new.to_fields()),
    )
    return None if entry is None else new


def event(r: Any, kind: str, now_ms: int, **fields: str | int | float) -> str:
    """Log an event ("scale-out", "scale-in", "cluster-full", "reclaimed"...);
    returns its entry id.  Field names "kind", "ms" and "id" are reserved."""
    if {"ms", "id"} & fields.keys():
        raise ValueError("event fields 'ms' and 'id' are reserved")
    entry = r.xadd(EVENTS_KEY, {"kind": kind, "ms": now_ms, **fields}, maxlen=EVENTS_MAXLEN, approximate=True)
    return _s(entry)


def events(r: Any, count: int = 100) -> list[dict[str, str]]:
    """The ``count`` newest events, newest first, each with its entry "id"."""
    return [
        {"id": _s(e), **{_s(k): _s(v) for k, v in f.items()}} for e, f in r.xrevrange(EVENTS_KEY, count=count)
    ]
