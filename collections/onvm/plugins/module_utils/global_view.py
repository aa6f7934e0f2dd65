# SPDX-License-Identifier: BSD-3-Clause
"""The cluster's global view in Redis: which hosts run a manager, which
instances each service has and where, and each instance's current rates.

The keys are keys.py's (the whole Redis layout, documented there); one
writer per host: its scaler agent.
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

from . import keys

HEARTBEAT_TTL_MS = 3000
# where roles/onvm_state keeps the Redis password on the control node
DEFAULT_PASSWORD_FILE = "/var/lib/onvm-redis/password"
LEFT_TTL_MS = 60_000
PREFIX = keys.PREFIX


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
        return (
            "cannot reach Redis at %s: %s (is it up? roles/onvm_state starts it on the onvm_state host)"
            % (
                where,
                e.strerror or e,
            )
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
                # the busy share over the whole interval (the manager's
                # load_pct is a 100 ms one): what steering and scaling go by
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
    busy = sum(i["load"] for i in instances)
    p = r.pipeline(transaction=True)
    p.set(keys.alive(host), now_ms, px=HEARTBEAT_TTL_MS)
    p.delete(keys.left(host))
    p.delete(keys.host(host), keys.instances(host))
    if totals is not None:
        p.set(keys.totals(host), json.dumps(totals), px=HEARTBEAT_TTL_MS)
    p.hset(
        keys.host(host),
        mapping={"cpus": cpus, "free_cores": round(max(cpus - busy, 0.0), 3), "updated_ms": now_ms},
    )
    p.pexpire(keys.host(host), HEARTBEAT_TTL_MS)
    if instances:
        p.hset(keys.instances(host), mapping={str(i["instance"]): json.dumps(i) for i in instances})
        p.pexpire(keys.instances(host), HEARTBEAT_TTL_MS)
    for i in instances:
        p.zadd(keys.service(i["service"]), {"%s/%d" % (host, i["instance"]): now_ms})
        p.zremrangebyscore(keys.service(i["service"]), 0, now_ms - HEARTBEAT_TTL_MS)
    p.execute()


def host_totals(r: Any, hosts: list[str]) -> dict[str, Any]:
    """Host -> its per-service and per-chain totals, for the live ``hosts``
    that published them."""
    if not hosts:
        return {}
    raw = r.mget([keys.totals(h) for h in hosts])
    return {h: json.loads(v) for h, v in zip(hosts, raw, strict=True) if v is not None}


def leave(r: Any, host: str, now_ms: int) -> None:
    """``host`` stops cleanly: out of the view at once, and not lost."""
    p = r.pipeline(transaction=True)
    p.set(keys.left(host), now_ms, px=LEFT_TTL_MS)
    p.delete(keys.alive(host), keys.host(host), keys.instances(host), keys.totals(host))
    p.execute()


def publish_limits(r: Any, host: str, limits: dict[str, tuple[int, int]]) -> None:
    """The min and max instances ``host``'s inventory declares per service
    (what the other scalers place and scale in by); expires with the heartbeat."""
    p = r.pipeline()
    p.delete(keys.limits(host))
    if limits:
        p.hset(keys.limits(host), mapping={s: json.dumps([lo, hi]) for s, (lo, hi) in limits.items()})
    p.pexpire(keys.limits(host), HEARTBEAT_TTL_MS)
    p.execute()


def declared_limits(r: Any, hosts: list[str], service: str) -> dict[str, tuple[int, int]]:
    """Host -> (min, max) of ``service``, for the ``hosts`` that declare it."""
    out = {}
    for h in hosts:
        raw = r.hget(keys.limits(h), service)
        if raw is not None:
            lo, hi = json.loads(raw)
            out[h] = (int(lo), int(hi))
    return out


def take_cooldown(r: Any, service: str, host: str, ms: int) -> bool:
    """Take ``service``'s cluster-wide cooldown for ``ms``; False if another
    host holds it (one scaler acts on a service at a time)."""
    return bool(r.set(keys.cooldown(service), host, nx=True, px=max(1, ms)))


def first_to_say_below(r: Any, service: str, lost: str, host: str) -> bool:
    """Whether ``host`` is the one scaler of the cluster to report that
    ``service`` fell under its minimum when ``lost`` hosts were lost."""
    return bool(r.set(keys.below(service, lost), host, nx=True, px=LEFT_TTL_MS))


def has_left(r: Any, host: str) -> bool:
    return bool(r.exists(keys.left(host)))


def alive_hosts(r: Any) -> list[str]:
    prefix = keys.ALIVE_PREFIX
    return sorted(k.decode()[len(prefix) :] for k in r.scan_iter(match=prefix + "*"))


def view(r: Any) -> dict[str, Any]:
    """The whole view: {"hosts": {host: info}, "services": {svc: [instance...]}}."""
    hosts: dict[str, Any] = {}
    services: dict[str, list[dict[str, Any]]] = {}
    for h in alive_hosts(r):
        info = {k.decode(): float(v) for k, v in r.hgetall(keys.host(h)).items()}
        if not info:
            continue
        hosts[h] = info
        for raw in r.hgetall(keys.instances(h)).values():
            inst = json.loads(raw)
            inst["host"] = h
            services.setdefault(inst["service"], []).append(inst)
    for insts in services.values():
        insts.sort(key=lambda i: (i["host"], i["instance"]))
    return {"hosts": hosts, "services": dict(sorted(services.items()))}
