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
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

from . import keys

HEARTBEAT_TTL_MS = 3000
# where roles/onvm_state keeps the Redis password on the control node
DEFAULT_PASSWORD_FILE = "/var/lib/onvm-redis/password"
LEFT_TTL_MS = 60_000
FORGET_MS = 600_000  # a host silent this long leaves the registry (its loss was seen long before)
MEMBERS_MAXLEN = 10_000  # membership entries kept (agents read them every 0.5 s)
PREFIX = keys.PREFIX


SENTINEL_SCHEME = "redis+sentinel"


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """``redis+sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/NAME[/DB]``
    (the sentinels, default port 26379; NAME the primary they watch) ->
    (sentinels, name, db, password).  Raises ValueError when malformed."""
    rest = url[len(SENTINEL_SCHEME) + 3 :]
    netloc, path = rest.partition("/")[::2]
    password = None
    if "@" in netloc:
        auth, netloc = netloc.rpartition("@")[::2]
        password = urllib.parse.unquote(auth.partition(":")[2]) or None
    sentinels = []
    for part in netloc.split(","):
        host, port = part.rpartition(":")[::2] if part.count(":") == 1 else (part, "")
        if not host or (port and not port.isdigit()):
            raise ValueError("bad sentinel address %r in %s" % (part, url))
        sentinels.append((host, int(port or 26379)))
    name, db = path.partition("/")[::2]
    if not name or (db and not db.isdigit()):
        raise ValueError("%s: want %s://HOST:PORT[,HOST:PORT...]/NAME[/DB]" % (url, SENTINEL_SCHEME))
    return sentinels, name, int(db or 0), password


def replicated(url: str) -> bool:
    """Whether ``url`` names a replicated global view (through its sentinels)."""
    return url.startswith(SENTINEL_SCHEME + "://")


def connect(url: str, password_file: str | None = None, **kw: Any) -> Any:
    """A Redis client of the global view (the agents', the CLI's; modules
    never connect).  ``password_file``: where the Redis password is
    (roles/onvm_state makes one, readable by root only); a password in the
    URL wins over it.  A ``redis+sentinel://`` URL gives a client of
    whichever server its sentinels say is the primary now: after a failover
    its next connection goes to the new one (the same password opens the
    sentinels and the servers)."""
    import redis  # deferred: the modules that import this file do not need it

    password = None
    if password_file:
        with open(password_file, encoding="utf-8") as f:
            password = f.read().strip() or None
    if replicated(url):
        from redis.sentinel import Sentinel

        sentinels, name, db, in_url = parse_sentinel_url(url)
        password = in_url or password
        timeouts = {k: v for k, v in kw.items() if k in ("socket_timeout", "socket_connect_timeout")}
        s = Sentinel(sentinels, sentinel_kwargs={"password": password, **timeouts}, **timeouts)
        return s.master_for(name, password=password, db=db, **kw)
    return redis.Redis.from_url(url, password=password, **kw)


def _ask(where: tuple[str, int], password: str | None, cmd: list[str], timeout: float) -> str:
    """One command over a plain socket (AUTH first when there is a
    password): its reply line(s), raw.  OSError when it cannot connect."""
    cmds = ([["AUTH", password]] if password else []) + [cmd]
    wire = b"".join(
        b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in c)
        for c in cmds
    )
    with socket.create_connection(where, timeout=timeout) as s:
        s.sendall(wire)
        got = b""
        while _replies(got) < len(cmds):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    return got.decode(errors="replace")


def _replies(buf: bytes) -> int:
    """How many whole RESP replies ``buf`` holds (simple strings, errors,
    integers, bulk strings, arrays of those)."""
    lines = buf.split(b"\r\n")[:-1]  # the last piece is not a whole line yet
    i = n = 0

    def one() -> bool:
        nonlocal i
        if i >= len(lines):
            return False
        head = lines[i]
        i += 1
        if head[:1] == b"$":
            if int(head[1:]) >= 0:
                i += 1
            return i <= len(lines)
        if head[:1] == b"*":
            return all(one() for _n in range(max(int(head[1:]), 0)))
        return True

    while one():
        n += 1
    return n


def ping(url: str, password_file: str | None = None, timeout: float = 3.0) -> str | None:
    """None when the Redis at ``url`` answers PING (after AUTH with the
    password, if one is given); otherwise what is wrong, in words.  Plain
    sockets: the scaler module checks this before it starts an agent and
    needs no Redis library on the host.  A ``redis+sentinel://`` URL: the
    first sentinel that answers names the primary, which is pinged.
    rediss:// and unix:// are not checked (None)."""
    password = None
    if replicated(url):
        try:
            sentinels, name, _db, password = parse_sentinel_url(url)
        except ValueError as e:
            return "bad Redis URL: %s" % e
    else:
        u = urllib.parse.urlsplit(url)
        if u.scheme != "redis":
            return None
        try:
            where = (u.hostname or "127.0.0.1", u.port or 6379)
        except ValueError as e:  # a port that is not a number
            return "bad Redis URL: %s" % e
        password = urllib.parse.unquote(u.password) if u.password else None
    if password is None and password_file:
        try:
            with open(password_file, encoding="utf-8") as f:
                password = f.read().strip() or None
        except OSError as e:
            return "cannot read the Redis password file %s: %s" % (password_file, e.strerror or e)
    if replicated(url):
        said = []
        for s in sentinels:
            try:
                lines = _ask(s, password, ["SENTINEL", "get-master-addr-by-name", name], timeout).split(
                    "\r\n"
                )
            except OSError as e:
                said.append("%s:%d: %s" % (s[0], s[1], e.strerror or e))
                continue
            body = lines[1:] if password else lines
            if len(body) >= 5 and body[0] == "*2":
                where = (body[2], int(body[4]))
                break
            said.append("%s:%d: %s" % (s[0], s[1], (body[0] if body else "no answer")[:80]))
        else:
            return "no sentinel names the primary %s (%s)" % (name, "; ".join(said))
    shown = "%s:%d" % where
    try:
        got = _ask(where, password, ["PING"], timeout)
    except OSError as e:
        return (
            "cannot reach Redis at %s: %s (is it up? roles/onvm_state starts it on the onvm_state host)"
            % (
                shown,
                e.strerror or e,
            )
        )
    replies = got.split("\r\n")[: 2 if password else 1]
    if password and replies and "without any password configured" in replies[0]:
        return "Redis at %s has no password, but one was given" % shown
    if password and replies and replies[0].startswith("-"):
        return "Redis at %s refused the password (%s)" % (shown, replies[0][1:].split(" ")[0])
    if replies and replies[-1].startswith("-NOAUTH"):
        return "Redis at %s wants a password (redis_password_file)" % shown
    if not replies or replies[-1] != "+PONG":
        return "Redis at %s did not answer PING (got %r)" % (shown, got[:80])
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
    announce: dict[str, tuple[int, int]] | None = None,
) -> bool:
    """One heartbeat of ``host`` with its instances (one round trip);
    ``totals``: its per-service and per-chain counters (`onvm cluster`).
    ``announce`` (the host joins: its agent's first heartbeat, the first
    after a Redis error, or its services changed): the min and max instances
    its inventory declares per service, written to the per-service
    declarations, and a membership entry that tells every agent which
    services it runs.  Returns True when the registry did not know the host
    (a Redis that restarted in between): the caller announces next time."""
    services = sorted({str(i["service"]) for i in instances})
    busy = sum(i["load"] for i in instances)
    p = r.pipeline(transaction=True)
    p.zadd(keys.HOSTS, {host: now_ms})
    record: dict[str, Any] = {
        "cpus": cpus,
        "free_cores": round(max(cpus - busy, 0.0), 3),
        "updated_ms": now_ms,
        "services": " ".join(services),
    }
    if totals is not None:
        record["totals"] = json.dumps(totals)
    p.hset(keys.host(host), mapping=record)
    p.pexpire(keys.host(host), HEARTBEAT_TTL_MS)
    p.delete(keys.instances(host))  # instances gone since the last heartbeat go with it
    if announce is not None:
        p.delete(keys.left(host))
        p.hset(keys.SERVICES, host, " ".join(services))
        for svc, (lo, hi) in announce.items():
            p.hset(keys.declared(svc), host, json.dumps([lo, hi]))
        p.xadd(
            keys.MEMBERS,
            {"host": host, "services": " ".join(services)},
            maxlen=MEMBERS_MAXLEN,
            approximate=True,
        )
    if instances:
        p.hset(keys.instances(host), mapping={str(i["instance"]): json.dumps(i) for i in instances})
        p.pexpire(keys.instances(host), HEARTBEAT_TTL_MS)
    by_svc: dict[str, dict[str, int]] = {}
    for i in instances:
        by_svc.setdefault(i["service"], {})["%s/%d" % (host, i["instance"])] = now_ms
    for svc, members in by_svc.items():
        p.zadd(keys.service(svc), members)
        p.zremrangebyscore(keys.service(svc), 0, now_ms - HEARTBEAT_TTL_MS)
    return bool(p.execute()[0]) and announce is None


def host_totals(r: Any, hosts: list[str]) -> dict[str, Any]:
    """Host -> its per-service and per-chain totals, for the ``hosts`` that
    published them."""
    if not hosts:
        return {}
    p = r.pipeline(transaction=False)
    for h in hosts:
        p.hget(keys.host(h), "totals")
    return {h: json.loads(v) for h, v in zip(hosts, p.execute(), strict=True) if v is not None}


def leave(r: Any, host: str, now_ms: int, declared: Sequence[str] = ()) -> None:
    """``host`` stops cleanly: out of the view at once, and not lost
    (``declared``: the services it declared, withdrawn)."""
    p = r.pipeline(transaction=True)
    p.set(keys.left(host), now_ms, px=LEFT_TTL_MS)
    p.zrem(keys.HOSTS, host)
    p.hdel(keys.SERVICES, host)
    p.delete(keys.host(host), keys.instances(host))
    for svc in declared:
        p.hdel(keys.declared(svc), host)
    p.xadd(keys.MEMBERS, {"host": host, "left": "1"}, maxlen=MEMBERS_MAXLEN, approximate=True)
    p.execute()


def take_cooldown(r: Any, service: str, host: str, ms: int) -> bool:
    """Take ``service``'s cluster-wide cooldown for ``ms``; False if another
    host holds it (one scaler acts on a service at a time)."""
    return bool(r.set(keys.cooldown(service), host, nx=True, px=max(1, ms)))


def first_to_say_below(r: Any, service: str, lost: str, host: str) -> bool:
    """Whether ``host`` is the one scaler of the cluster to report that
    ``service`` fell under its minimum when ``lost`` hosts were lost."""
    return bool(r.set(keys.below(service, lost), host, nx=True, px=LEFT_TTL_MS))


def has_left(r: Any, host: str) -> bool:
    return host in left_among(r, [host])


def left_among(r: Any, hosts: Sequence[str]) -> set[str]:
    """Which of ``hosts`` left cleanly (one round trip, one EXISTS each)."""
    if not hosts:
        return set()
    p = r.pipeline(transaction=False)
    for h in hosts:
        p.exists(keys.left(h))
    return {h for h, n in zip(hosts, p.execute(), strict=True) if n}


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def alive_hosts(r: Any, now_ms: int | None = None) -> list[str]:
    """Every live host (heartbeat within the TTL), by name: one read of the
    registry, as long as the cluster (the CLI's; the agents never need it)."""
    now = _now_ms() if now_ms is None else now_ms
    return sorted(_s(h) for h in r.zrangebyscore(keys.HOSTS, now - HEARTBEAT_TTL_MS, "+inf"))


def members_now(r: Any, now_ms: int) -> dict[str, set[str]]:
    """Every live host with the services it runs (two reads, as long as the
    cluster: an agent asks when it starts and after a Redis error, and
    follows membership() from there)."""
    p = r.pipeline(transaction=False)
    p.zrangebyscore(keys.HOSTS, now_ms - HEARTBEAT_TTL_MS, "+inf")
    p.hgetall(keys.SERVICES)
    live, services = p.execute()
    ran = {_s(h): set(_s(v).split()) for h, v in services.items()}
    return {_s(h): ran.get(_s(h), set()) for h in live}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def check(
    r: Any, cursor: str, now_ms: int, suspects: Sequence[str] = ()
) -> tuple[str, list[tuple[str, set[str] | None]], set[str]]:
    """What an agent asks every VIEW_EVERY about the cluster's hosts, in one
    round trip as long as the answer (not the cluster):
      - the membership entries since ``cursor`` (a stream id; "0" from the
        start of what is kept), oldest first: (host, the services it runs,
        or None when it left cleanly), with the new cursor;
      - the silent hosts: registered (not left), heartbeat older than the
        TTL, plus those of ``suspects`` the registry does not have at all.
    Registry entries older than FORGET_MS are dropped on the way."""
    p = r.pipeline(transaction=False)
    p.xread({keys.MEMBERS: cursor}, count=MEMBERS_MAXLEN)
    p.zrangebyscore(keys.HOSTS, "-inf", "(%d" % (now_ms - HEARTBEAT_TTL_MS))
    p.zrangebyscore(keys.HOSTS, "-inf", now_ms - FORGET_MS)
    if suspects:
        p.zmscore(keys.HOSTS, list(suspects))
    got = p.execute()
    changes: list[tuple[str, set[str] | None]] = []
    for _stream, entries in got[0] or []:
        for entry, fields in entries:
            f = {_s(k): _s(v) for k, v in fields.items()}
            cursor = _s(entry)
            if "host" in f:
                changes.append((f["host"], None if f.get("left") else set(f.get("services", "").split())))
    silent = {_s(h) for h in got[1]}
    if suspects:
        silent |= {h for h, sc in zip(suspects, got[3], strict=True) if not _live(sc, now_ms)}
    if got[2]:
        p = r.pipeline(transaction=True)
        p.zrem(keys.HOSTS, *got[2])
        p.hdel(keys.SERVICES, *got[2])
        p.execute()
    return cursor, changes, silent


def membership_tail(r: Any) -> str:
    """The cursor of the newest membership entry ("0" when there is none)."""
    last = r.xrevrange(keys.MEMBERS, count=1)
    return _s(last[0][0]) if last else "0"


def _live(score: float | None, now_ms: int) -> bool:
    """A registry score (last heartbeat, ms) is a live host's."""
    return score is not None and score >= now_ms - HEARTBEAT_TTL_MS


def live_among(r: Any, hosts: Sequence[str], now_ms: int) -> set[str]:
    """Which of ``hosts`` are live (one read, as long as the list)."""
    if not hosts:
        return set()
    scores = r.zmscore(keys.HOSTS, list(hosts))
    return {h for h, sc in zip(hosts, scores, strict=True) if _live(sc, now_ms)}


def _fill(r: Any, hosts: list[str], view: dict[str, Any], services: set[str] | None) -> None:
    """Read ``hosts``' records and instances into ``view`` (one round trip):
    all their instances when ``services`` is None, else those of ``services``."""
    p = r.pipeline(transaction=False)
    for h in hosts:
        p.hgetall(keys.host(h))
        p.hgetall(keys.instances(h))
    got = p.execute()
    for n, h in enumerate(hosts):
        rec, insts = got[2 * n], got[2 * n + 1]
        info = {_s(k): _s(v) for k, v in rec.items()}
        if not info:
            continue  # gone between the two reads
        view["hosts"][h] = {k: float(v) for k, v in info.items() if k in ("cpus", "free_cores", "updated_ms")}
        for raw in insts.values():
            inst = json.loads(raw)
            if services is not None and inst["service"] not in services:
                continue
            inst["host"] = h
            view["services"].setdefault(inst["service"], []).append(inst)


def _sorted(view: dict[str, Any]) -> dict[str, Any]:
    for insts in view["services"].values():
        insts.sort(key=lambda i: (i["host"], i["instance"]))
    view["services"] = dict(sorted(view["services"].items()))
    return view


def view(r: Any) -> dict[str, Any]:
    """The whole view: {"hosts": {host: info}, "services": {svc: [instance...]}}.
    As long as the cluster: for the CLI and the tests; an agent reads only
    what a decision needs (services_view)."""
    out: dict[str, Any] = {"hosts": {}, "services": {}}
    _fill(r, alive_hosts(r), out, None)
    return _sorted(out)


def services_view(r: Any, services: set[str], now_ms: int, hosts: Sequence[str] = ()) -> dict[str, Any]:
    """The part of the view a decision about ``services`` needs, shaped like
    view(): every live instance of each of them, every live host that runs
    one or declares it (with its free cores), and, under "declared",
    service -> {host: (min, max)}.  Also every instance of the live ``hosts``
    (this host's fabric peers, for its stand-ins).  Three round trips, as
    long as the answer: the hosts that run or declare these services."""
    out: dict[str, Any] = {"hosts": {}, "services": {}, "declared": {}}
    svcs = sorted(services)
    if not svcs and not hosts:
        return out
    p = r.pipeline(transaction=False)
    for svc in svcs:
        p.zrangebyscore(keys.service(svc), now_ms - HEARTBEAT_TTL_MS, "+inf")
        p.hgetall(keys.declared(svc))
    got = p.execute()
    involved: set[str] = set(hosts)
    declared: dict[str, dict[str, tuple[int, int]]] = {}
    for n, svc in enumerate(svcs):
        involved |= {_s(m).rsplit("/", 1)[0] for m in got[2 * n]}
        d = {}
        for h, raw in got[2 * n + 1].items():
            lo, hi = json.loads(raw)
            d[_s(h)] = (int(lo), int(hi))
        declared[svc] = d
        involved |= set(d)
    ordered = sorted(involved)
    scores = r.zmscore(keys.HOSTS, ordered) if ordered else []
    live = {h for h, sc in zip(ordered, scores, strict=True) if _live(sc, now_ms)}
    forgotten = {h for h, sc in zip(ordered, scores, strict=True) if sc is None}
    withdraw = [(svc, h) for svc, d in declared.items() for h in d if h in forgotten]
    if withdraw:  # declared by hosts the registry no longer has (lost long ago)
        p = r.pipeline(transaction=False)
        for svc, h in withdraw:
            p.hdel(keys.declared(svc), h)
        p.execute()
    _fill(r, sorted(live), out, None)
    wanted = set(svcs)
    peers = set(hosts)
    out["services"] = {
        svc: [i for i in insts if svc in wanted or i["host"] in peers]
        for svc, insts in out["services"].items()
        if svc in wanted or any(i["host"] in peers for i in insts)
    }
    out["declared"] = {svc: {h: v for h, v in d.items() if h in live} for svc, d in declared.items()}
    return _sorted(out)
