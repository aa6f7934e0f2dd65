"""The scale-request queue on a real redis-server (one per test): delivery to
the target host's consumer only, re-delivery of unacked entries after a
restart, at-most-once begin, reclaim of a dead host's requests by exactly one
mover, and the capped event log."""

from __future__ import annotations

import threading

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue as sq
from onvm.lab.redis_server import RedisServer

T0 = 1_700_000_000_000


def test_fields_round_trip() -> None:
    req = sq.new_request("fw", "h1", "scaler@h0", now_ms=T0)
    assert len(req.id) == 32 and req.attempt == 1 and req.kind == "out" and req.created_ms == T0
    fields = {k.encode(): v.encode() for k, v in req.to_fields().items()}
    assert sq.ScaleRequest.from_fields(fields) == req
    stop = sq.new_request("fw", "h1", "cli", kind="in", instance="7", now_ms=T0)
    assert sq.ScaleRequest.from_fields(stop.to_fields()) == stop
    with pytest.raises(ValueError):
        sq.new_request("fw", "h1", "cli", kind="sideways")
    with pytest.raises(ValueError):
        sq.new_request("fw", "h1", "cli", kind="in")  # which instance?


def test_read_by_target_host_only(redis_server: RedisServer) -> None:
    r = redis_server.client()
    req = sq.new_request("fw", "h1", "h0", now_ms=T0)
    entry = sq.enqueue(r, req)  # before any consumer group exists
    assert sq.state(r, req.id) == {
        "state": "queued",
        "host": "h1",
        "entry": entry,
        "attempt": "1",
        "detail": "",
        "updated_ms": str(T0),
    }
    assert 0 < r.pttl(sq.state_key(req.id)) <= sq.STATE_TTL_MS
    assert sq.read(r, "h2", block_ms=10) == []
    assert sq.read(r, "h1", block_ms=10) == [(entry, req)]
    assert sq.read(r, "h2", block_ms=10) == []
    assert sq.state(r, "no-such-request") is None


def test_unacked_entry_redelivered_to_same_consumer_only(redis_server: RedisServer) -> None:
    r = redis_server.client()
    a, b = (sq.new_request("fw", "h1", "h0", now_ms=T0 + i) for i in range(2))
    ea, eb = sq.enqueue(r, a), sq.enqueue(r, b)
    assert sq.read(r, "h1", block_ms=10) == [(ea, a)]
    # the daemon restarts without acking: a first again, then b
    again = redis_server.client()
    assert sq.read(again, "h1", block_ms=10) == [(ea, a)]
    assert sq.read(again, "h1", block_ms=10, count=5) == [(ea, a)]
    # nor is it delivered to another consumer, nor to another host's daemon
    key = sq.stream_key("h1")
    assert r.xreadgroup(sq.GROUP, "other", {key: "0"}) == [[key.encode(), []]]
    assert sq.read(r, "h2", block_ms=10) == []
    [pending] = r.xpending_range(key, sq.GROUP, "-", "+", 10)
    assert (pending["message_id"].decode(), pending["consumer"], pending["times_delivered"]) == (ea, b"h1", 3)
    sq.ack(again, "h1", ea, a, now_ms=T0 + 5)
    assert sq.read(again, "h1", block_ms=10, count=5) == [(eb, b)]


def test_ack_removes_entry_and_sets_done(redis_server: RedisServer) -> None:
    r = redis_server.client()
    req = sq.new_request("fw", "h1", "h0", now_ms=T0)
    entry = sq.enqueue(r, req)
    [(got, _)] = sq.read(r, "h1", block_ms=10)
    sq.mark(r, req.id, "started", now_ms=T0 + 1)
    assert (sq.state(r, req.id) or {}).get("state") == "started"
    sq.ack(r, "h1", got, req, detail="instance 3", now_ms=T0 + 2)
    st = sq.state(r, req.id)
    assert st is not None and (st["state"], st["detail"], st["updated_ms"]) == (
        "done",
        "instance 3",
        str(T0 + 2),
    )
    assert r.xlen(sq.stream_key("h1")) == 0
    assert r.xpending(sq.stream_key("h1"), sq.GROUP)["pending"] == 0
    assert sq.read(r, "h1", block_ms=10) == []
    assert st["entry"] == entry
    with pytest.raises(ValueError):
        sq.mark(r, req.id, "sleeping")


def test_begin_once(redis_server: RedisServer) -> None:
    r = redis_server.client()
    req = sq.new_request("fw", "h1", "h0", now_ms=T0)
    assert sq.begin(r, req) is True
    assert sq.begin(redis_server.client(), req) is False
    moved = sq.ScaleRequest(**{**req.__dict__, "host": "h2", "attempt": 2})
    assert sq.begin(r, moved) is False  # attempt-independent
    assert 0 < r.pttl("onvm:req:%s:begun" % req.id) <= sq.STATE_TTL_MS
    assert sq.begin(r, sq.new_request("fw", "h1", "h0", now_ms=T0)) is True


def test_orphans_of_dead_hosts_older_than_timeout(redis_server: RedisServer) -> None:
    r = redis_server.client()
    old_dead = sq.new_request("fw", "dead", "h0", now_ms=T0)
    young_dead = sq.new_request("fw", "dead", "h0", now_ms=T0 + 9_000)
    delivered_dead = sq.new_request("nat", "dead", "h0", now_ms=T0 + 1)
    done_dead = sq.new_request("nat", "dead", "h0", now_ms=T0 + 2)
    old_alive = sq.new_request("fw", "alive", "h0", now_ms=T0)
    e_old = sq.enqueue(r, old_dead)
    sq.enqueue(r, young_dead)
    sq.enqueue(r, old_alive)
    e_deliv = sq.enqueue(r, delivered_dead)
    sq.enqueue(r, done_dead)
    r.set("onvm:scaleq:not-a-stream", 1)
    # the dead host's daemon took them all, finished one (its state says so)
    # and died with the others pending
    assert len(sq.read(r, "dead", block_ms=10, count=5)) == 4
    sq.mark(r, done_dead.id, "done")
    orphans = sq.orphans(r, ["alive"], timeout_ms=5_000, now_ms=T0 + 10_000)
    assert orphans == [("dead", e_old, old_dead), ("dead", e_deliv, delivered_dead)]
    assert sq.orphans(r, ["alive", "dead"], timeout_ms=5_000, now_ms=T0 + 10_000) == []
    assert len(sq.orphans(r, [], timeout_ms=0, now_ms=T0 + 10_000)) == 4


def test_move_to_live_host_once(redis_server: RedisServer) -> None:
    r = redis_server.client()
    req = sq.new_request("fw", "dead", "h0", now_ms=T0)
    entry = sq.enqueue(r, req)
    sq.read(r, "dead", block_ms=10)  # delivered, never acked
    [(host, e, orphan)] = sq.orphans(r, ["h2"], timeout_ms=1_000, now_ms=T0 + 5_000)
    assert (host, e, orphan) == ("dead", entry, req)

    results: list[sq.ScaleRequest | None] = []
    barrier = threading.Barrier(2)

    def mover() -> None:
        client = redis_server.client()
        barrier.wait()
        results.append(sq.move(client, host, e, orphan, "h2", now_ms=T0 + 5_000))

    threads = [threading.Thread(target=mover) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 2 and results.count(None) == 1
    [new] = [x for x in results if x is not None]
    assert new == sq.ScaleRequest(
        id=req.id, service="fw", host="h2", origin="h0", attempt=2, created_ms=T0 + 5_000
    )
    assert sq.move(r, host, e, orphan, "h3", now_ms=T0 + 6_000) is None  # same (id, attempt)

    assert r.xlen(sq.stream_key("dead")) == 0
    assert r.xpending(sq.stream_key("dead"), sq.GROUP)["pending"] == 0
    [(new_entry, got)] = sq.read(r, "h2", block_ms=10)
    assert got == new
    st = sq.state(r, req.id)
    assert st is not None
    assert (st["state"], st["host"], st["entry"], st["attempt"]) == ("queued", "h2", new_entry, "2")
    assert sq.orphans(r, ["h2"], timeout_ms=1_000, now_ms=T0 + 60_000) == []


def test_move_of_never_delivered_or_vanished_entry(redis_server: RedisServer) -> None:
    r = redis_server.client()
    req = sq.new_request("fw", "dead", "h0", now_ms=T0)
    entry = sq.enqueue(r, req)  # no consumer group on the dead host's stream yet
    new = sq.move(r, "dead", entry, req, "h2", now_ms=T0 + 5_000)
    assert new is not None and new.attempt == 2
    assert r.xlen(sq.stream_key("dead")) == 0
    # the attempt-2 entry is acked by h2 before a late mover of attempt 2 runs
    [(e2, got)] = sq.read(r, "h2", block_ms=10)
    sq.ack(r, "h2", e2, got)
    assert sq.move(r, "h2", e2, got, "h3", now_ms=T0 + 9_000) is None
    assert r.exists(sq.stream_key("h3")) == 0
    assert (sq.state(r, req.id) or {}).get("state") == "done"


def test_events_capped_newest_first(redis_server: RedisServer) -> None:
    r = redis_server.client()
    for i in range(1250):
        sq.event(r, "scale-out", T0 + i, service="fw", host="h1", n=i, load=0.5)
    sq.event(r, "cluster-full", T0 + 2_000, service="nat")
    assert sq.EVENTS_MAXLEN <= r.xlen(sq.EVENTS_KEY) < 1250  # approximate trimming
    newest = sq.events(r, count=3)
    assert [e["kind"] for e in newest] == ["cluster-full", "scale-out", "scale-out"]
    assert newest[0]["ms"] == str(T0 + 2_000) and newest[0]["service"] == "nat"
    assert {k: newest[1][k] for k in ("service", "host", "n", "load")} == {
        "service": "fw",
        "host": "h1",
        "n": "1249",
        "load": "0.5",
    }
    # stream ids are "<ms>-<seq>": compared as numbers ("-10" > "-9")
    ids = [tuple(int(x) for x in e["id"].split("-")) for e in newest]
    assert ids[0] > ids[1] > ids[2]
    assert len(sq.events(r)) == 100
    with pytest.raises(ValueError):
        sq.event(r, "reclaimed", T0, ms=1)


def test_read_survives_redis_losing_the_group(redis_server: RedisServer) -> None:
    r = redis_server.client()
    assert sq.read(r, "h1", block_ms=10) == []  # group created
    redis_server.stop()
    redis_server.start()  # no persistence: stream and group are gone
    req = sq.new_request("fw", "h1", "h0", now_ms=T0)
    entry = sq.enqueue(r, req)
    assert sq.read(r, "h1", block_ms=10) == [(entry, req)]


def test_enqueue_without_redis_raises(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url, retry=Retry(NoBackoff(), 0))
    redis_server.stop()
    with pytest.raises(redis.ConnectionError):
        sq.enqueue(r, sq.new_request("fw", "h1", "h0", now_ms=T0))


def test_read_drops_malformed_and_vanished_entries(redis_server: RedisServer) -> None:
    r = redis_server.client()
    key = sq.stream_key("h1")
    gone = sq.enqueue(r, sq.new_request("fw", "h1", "h0", now_ms=T0))
    assert [e for e, _ in sq.read(r, "h1", block_ms=10)] == [gone]
    r.xdel(key, gone)  # deleted while pending: re-delivered as an empty entry
    r.xadd(key, {"junk": "1"})
    req = sq.new_request("fw", "h1", "h0", now_ms=T0 + 1)
    entry = sq.enqueue(r, req)
    # the tombstone is acked, the junk acked and deleted, on the way to req
    assert sq.read(r, "h1", block_ms=10) == [(entry, req)]
    assert r.xpending(key, sq.GROUP)["pending"] == 1
    assert [e.decode() for e, _ in r.xrange(key)] == [entry]
