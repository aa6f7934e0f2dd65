# SPDX-License-Identifier: BSD-3-Clause
"""The cluster's global view in Redis: which hosts run a manager, which
instances each service has and where, and each instance's current rates.

Layout (one writer per host: its scaler agent):
  onvm:alive:<host>   a heartbeat, expires after HEARTBEAT_TTL_MS
  onvm:host:<host>    hash: cpus, free_cores, updated_ms (expires with it)
  onvm:inst:<host>    hash: instance id -> JSON of service, state, rates, busy
  onvm:svc:<service>  sorted set of "<host>/<instance>", score = last seen ms
  onvm:totals:<host>  JSON: per-service and per-chain counters over its manager's life
  onvm:left:<host>    set by a host that stops cleanly (undeploy), for LEFT_TTL_MS
A host that stops heartbeating drops out of every read after the TTL; its
stale members are pruned by the next writer of that service.  One that
leaves cleanly drops out at once and is not lost: the other scalers do not
start its instances again elsewhere.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
from typing import Any

HEARTBEAT_TTL_MS = 3000
# where roles/onvm_state keeps the Redis password on the control node
DEFAULT_PASSWORD_FILE = "/var/lib/onvm-redis/password"
# the lab's (inventory/lab: a Redis of its own on the management bridge)
LAB_REDIS = "redis://198.18.0.1:6379/0"
LAB_PASSWORD_FILE = "/var/lib/onvm-redis-lab/password"
LEFT_TTL_MS = 60_000
PREFIX = "onvm"


def connect(url: str, password_file: str | None = None, **kw: Any) -> Any:
    """A Redis client of the global view (the agents', the CLI's; modules
    never connect).  ``password_file``: where the Redis password is
    (roles/onvm_state makes one, readable by root only); a password in the
    URL wins over it."""
    import redis  # deferred: the modules that import this file do not need it

    password = None
    if password_file:
        with open(password_file, encoding="utf-8") as f:
            password = f.read().strip() or None
    return redis.Redis.from_url(url, password=password, **kw)


def ping(url: str, password_file: str | None = None, timeout: float = 3.0) -> str | None:
    """None when the Redis at ``url`` answers PING (after AUTH with the
    password, if one is given); otherwise what is wrong, in words.  Plain
    sockets: the scaler module checks this before it starts an agent and
    needs no Redis library on the host.  rediss:// and unix:// are not
    checked (None)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "redis":
        return None
    try:
        where = "%s:%d" % (u.hostname or "127.0.0.1", u.port or 6379)
    except ValueError as e:  # a port that is not a number
        return "bad Redis URL: %s" % e
    password = urllib.parse.unquote(u.password) if u.password else None
    if password is None and password_file:
        try:
            with open(password_file, encoding="utf-8") as f:
                password = f.read().strip() or None
        except OSError as e:
            return "cannot read the Redis password file %s: %s" % (password_file, e.strerror or e)
    cmds = ([["AUTH", password]] if password else []) + [["PING"]]
    wire = b"".join(
        b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in c)
        for c in cmds
    )
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=timeout) as s:
            s.sendall(wire)
            got = b""
            while got.count(b"\r\n") < len(cmds):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
    except OSError as e:
        return "cannot reach Redis at %s: %s (is it up? roles/onvm_state starts it on the control node)" % (
            where,
            e.strerror or e,
        )
    replies = got.decode(errors="replace").split("\r\n")[: len(cmds)]
    if password and replies and "without any password configured" in replies[0]:
        return "Redis at %s has no password, but one was given" % where
    if password and replies and replies[0].startswith("-"):
        return "Redis at %s refused the password (%s)" % (where, replies[0][1:].split(" ")[0])
    if replies and replies[-1].startswith("-NOAUTH"):
        return "Redis at %s wants a password (redis_password_file)" % where
    if not replies or replies[-1] != "+PONG":
        return "Redis at %s did not answer PING (got %r)" % (where, got[:80])
    return None


def _k(*parts: str) -> str:
    return ":".join((PREFIX, *parts))


def rates(prev: dict[str, Any] | None, snap: dict[str, Any], seconds: float) -> list[dict[str, Any]]:
    """Per-instance rates between two stats snapshots (pure).  An instance
    seen for the first time (or restarted: another pid) has rates 0."""
    before = {n["instance"]: n for n in (prev or {}).get("nfs", [])}
    out = []
    for n in snap["nfs"]:
        if n["state"] != "running" or n.get("remote"):
            continue  # stand-ins for other hosts' instances are theirs to publish
        p = before.get(n["instance"])
        if p is None or p["pid"] != n["pid"] or seconds <= 0:
            p, seconds_ = n, 1.0
        else:
            seconds_ = seconds
        d = {k: n[k] - p[k] for k in ("rx", "tx", "rx_drop", "dropped", "busy_cycles", "idle_cycles")}
        cycles = d["busy_cycles"] + d["idle_cycles"]
        out.append(
            {
                "instance": n["instance"],
                "service": n["service"],
                "state": n["state"],
                "rx_pps": round(d["rx"] / seconds_, 1),
                "tx_pps": round(d["tx"] / seconds_, 1),
                # dropped by the NF's verdict or lost to its full rx ring
                "drop_pps": round((d["rx_drop"] + d["dropped"]) / seconds_, 1),
                # lost to its full rx ring only: what overload looks like
                "ring_drop_pps": round(d["rx_drop"] / seconds_, 1),
                "busy": round(d["busy_cycles"] / cycles, 3) if cycles > 0 else n["load_pct"] / 100.0,
                # what steering and scaling go by: the busy share over the
                # whole interval (the manager's load_pct is a 100 ms one)
                "load": round(d["busy_cycles"] / cycles, 3) if cycles > 0 else n["load_pct"] / 100.0,
                "rx_ring": n["rx_ring_count"],
                "flows": n["flows"],
            }
        )
    return out


def publish(
    r: Any,
    host: str,
    cpus: int,
    instances: list[dict[str, Any]],
    now_ms: int,
    totals: dict[str, Any] | None = None,
) -> None:
    """One heartbeat of ``host`` with its instances (one round trip);
    ``totals``: its per-service and per-chain counters (`onvm cluster`)."""
    busy = sum(i["busy"] for i in instances)
    p = r.pipeline(transaction=True)
    p.set(_k("alive", host), now_ms, px=HEARTBEAT_TTL_MS)
    p.delete(_k("left", host))
    p.delete(_k("host", host), _k("inst", host))
    if totals is not None:
        p.set(_k("totals", host), json.dumps(totals), px=HEARTBEAT_TTL_MS)
    p.hset(
        _k("host", host),
        mapping={"cpus": cpus, "free_cores": round(max(cpus - busy, 0.0), 3), "updated_ms": now_ms},
    )
    p.pexpire(_k("host", host), HEARTBEAT_TTL_MS)
    if instances:
        p.hset(_k("inst", host), mapping={str(i["instance"]): json.dumps(i) for i in instances})
        p.pexpire(_k("inst", host), HEARTBEAT_TTL_MS)
    for i in instances:
        p.zadd(_k("svc", i["service"]), {"%s/%d" % (host, i["instance"]): now_ms})
        p.zremrangebyscore(_k("svc", i["service"]), 0, now_ms - HEARTBEAT_TTL_MS)
    p.execute()


def host_totals(r: Any, hosts: list[str]) -> dict[str, Any]:
    """Host -> its per-service and per-chain totals, for the live ``hosts``
    that published them."""
    if not hosts:
        return {}
    raw = r.mget([_k("totals", h) for h in hosts])
    return {h: json.loads(v) for h, v in zip(hosts, raw, strict=True) if v is not None}


def leave(r: Any, host: str, now_ms: int) -> None:
    """``host`` stops cleanly: out of the view at once, and not lost."""
    p = r.pipeline(transaction=True)
    p.set(_k("left", host), now_ms, px=LEFT_TTL_MS)
    p.delete(_k("alive", host), _k("host", host), _k("inst", host), _k("totals", host))
    p.execute()


def has_left(r: Any, host: str) -> bool:
    return bool(r.exists(_k("left", host)))


def alive_hosts(r: Any) -> list[str]:
    prefix = _k("alive", "")
    return sorted(k.decode()[len(prefix) :] for k in r.scan_iter(match=prefix + "*"))


def view(r: Any) -> dict[str, Any]:
    """The whole view: {"hosts": {host: info}, "services": {svc: [instance...]}}."""
    hosts: dict[str, Any] = {}
    services: dict[str, list[dict[str, Any]]] = {}
    for h in alive_hosts(r):
        info = {k.decode(): float(v) for k, v in r.hgetall(_k("host", h)).items()}
        if not info:
            continue
        hosts[h] = info
        for raw in r.hgetall(_k("inst", h)).values():
            inst = json.loads(raw)
            inst["host"] = h
            services.setdefault(inst["service"], []).append(inst)
    for insts in services.values():
        insts.sort(key=lambda i: (i["host"], i["instance"]))
    return {"hosts": hosts, "services": dict(sorted(services.items()))}
