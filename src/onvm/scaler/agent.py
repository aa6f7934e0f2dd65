"""onvm-scaler: one per host.  Keeps this host's part of the global view
current, scales its services out and in, and serves its scale queue.

    onvm-scaler --host lab1 --redis redis://198.18.0.1:6379/0 [--config FILE]

Every interval it reads the host's stats area (through cffi, the layout of
native/include/onvm/onvm_stats.h) and publishes a heartbeat, the host's free
cores and each instance's rates in Redis.  With a --config (written by
onvm.nfv.onvm_scaler) it also:
  - finds services whose instances here are all at their limit for a window
    (onvm.scaler.detect), places a new instance (module_utils/placement.py:
    this host first, then hosts that run the service, most free cores) and
    queues the request on the chosen host's Redis Stream;
  - finds services with an instance too many and, when the least loaded one
    is here, queues its drain-and-stop on its own stream;
  - keeps the manager's stand-ins for other hosts' instances current (a
    lost host's are drained: no new or old flow goes there);
  - when a host it saw is lost, starts again elsewhere the instances of
    services that fell under their cluster minimum (onvm.scaler.replace);
  - re-places requests queued on hosts that died;
  - serves its own stream in a worker thread (onvm.scaler.worker).
No manager, no heartbeat: the host drops out of the view.  Redis down: it
logs, backs off, reconnects.

This file is the loop: read the stats, publish what changed, read the part
of the view a decision needs (never the whole cluster: an agent's reads do
not grow with the number of hosts), carry out what the pure decisions
(decide.py) return, run the reconcile step (reconcile.py).  The Redis keys
are module_utils/keys.py's.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from typing import Any

import redis

from ansible_collections.onvm.nfv.plugins.module_utils import global_view
from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue as q
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import name_ok
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import StatsError, StatsReader, default_path

from . import decide, events, metrics, replace
from .config import ConfigError, ScalerConfig, load
from .detect import Detector
from .reconcile import Reconciler

log = logging.getLogger("onvm-scaler")


RATE_WINDOW = 0.3  # seconds the published rates and loads are taken over
# A host tells the others what changed, when it changed: its heartbeat
# carries its rates when they moved, at most every VIEW_EVERY (as often as
# the others read them), and at least every HEARTBEAT_EVERY anyway.
HEARTBEAT_EVERY = 1.0  # s between heartbeats when nothing changed (the TTL is 3 s)
PUBLISH_DELTA = 0.05  # an instance's load moved this much: the others hear of it
QUEUE_BLOCK_MS = 2000  # the queue worker's wait for a request, per read (it is woken by one)
VIEW_EVERY = 0.5  # s between checks of host loss, surplus, stand-ins and stuck requests
MAX_BACKOFF = 5.0  # seconds between retries while Redis cannot be reached, at most
# after a Redis error, how long absence from the view is not loss: every live
# agent is back within its back-off and heartbeats at once
LOSS_GRACE = MAX_BACKOFF + 1.0


def totals(snap: dict[str, Any]) -> dict[str, Any]:
    """The host's per-service and per-chain totals (never go back while its
    manager runs) as `onvm cluster` shows them."""
    return {
        "services": {t["service"]: {k: v for k, v in t.items() if k != "service"} for t in snap["services"]},
        "chains": {c["chain"]: {k: v for k, v in c.items() if k != "chain"} for c in snap["chains"]},
    }


class Agent:
    def __init__(
        self,
        host: str,
        redis_url: str,
        interval: float,
        stats_path: str | None = None,
        config: ScalerConfig | None = None,
        password_file: str | None = None,
    ) -> None:
        self.host = host
        self.interval = interval
        self.stats_path = stats_path or default_path(host)
        self.redis_url = redis_url
        self.password_file = password_file
        self.redis = global_view.connect(redis_url, password_file, socket_timeout=2, socket_connect_timeout=2)
        self.reader: StatsReader | None = None
        # snapshots of the last RATE_WINDOW s: rates are taken over it
        self.snaps: deque[tuple[float, dict[str, Any]]] = deque()
        self.stopping = False
        self.cpus = (config.cpus if config is not None else 0) or os.cpu_count() or 1
        self.config = config
        self.detector = Detector(config.policy) if config else None
        self.full_logged: dict[str, float] = {}
        self.losses = replace.LossTracker(grace=LOSS_GRACE)
        self.below_reported: set[tuple[str, str]] = set()
        # what the metrics endpoint serves: the newest snapshot and rates
        self.latest: tuple[dict[str, Any] | None, list[dict[str, Any]]] = (None, [])
        # the last stats update seen (detection samples go from one to the next)
        self.last_update: tuple[float, dict[str, Any]] | None = None
        self.published_at = -1e9
        self.published: tuple[Any, ...] | None = None
        self.published_rates: dict[int, tuple[float, bool]] = {}
        self.announced: frozenset[str] | None = None
        self.announce_due = True
        self.cursor: str | None = None  # where this agent is in the membership stream
        self.view_at = -1e9
        self.reclaimed_at = -1e9
        self.reconciler = Reconciler(host, config) if config else None

    # ---- the view -------------------------------------------------------

    def snapshot(self) -> dict[str, Any] | None:
        try:
            if self.reader is None:
                self.reader = StatsReader(self.stats_path)
            snap: dict[str, Any] = self.reader.snapshot()
            if snap["mgr_pid"] <= 0 or not os.path.exists("/proc/%d" % snap["mgr_pid"]):
                raise StatsError("manager pid %d is gone" % snap["mgr_pid"])
            return snap
        except StatsError as e:
            if self.reader is not None:
                self.reader.close()
                log.warning("no manager for %s: %s", self.host, e)
            self.reader = None
            return None

    def tick(self) -> None:
        snap = self.snapshot()
        now = time.monotonic()
        if snap is None:
            self.snaps.clear()
            self.latest = (None, [])
            self.last_update = None
            return
        while len(self.snaps) > 1 and self.snaps[1][0] <= now - RATE_WINDOW:
            self.snaps.popleft()
        prev_t, prev = self.snaps[0] if self.snaps else (now, None)
        insts = global_view.rates(prev, snap, now - prev_t)
        self.snaps.append((now, snap))
        self.latest = (snap, insts)
        sample = self.sample(now, snap)
        shape = tuple(sorted((i["service"], i["instance"], i["state"]) for i in insts))
        if (
            shape != self.published
            or now - self.published_at >= HEARTBEAT_EVERY
            or (now - self.published_at >= VIEW_EVERY and self.moved(insts))
        ):
            self.publish(now, shape, insts, snap)
        if self.config is not None:
            self.scale(now, sample)

    def moved(self, insts: list[dict[str, Any]]) -> bool:
        """Whether this host's rates moved enough since its last heartbeat
        for the others to hear of it: an instance's load by PUBLISH_DELTA
        or more (stand-ins carry loads in steps of 5 points), or packets
        lost to a full ring started or stopped."""
        before = self.published_rates
        for i in insts:
            b = before.get(i["instance"])
            if b is None or abs(i["load"] - b[0]) >= PUBLISH_DELTA or (i["ring_drop_pps"] > 0) != b[1]:
                return True
        return False

    def publish(
        self, now: float, shape: tuple[Any, ...], insts: list[dict[str, Any]], snap: dict[str, Any]
    ) -> None:
        """One heartbeat; the host announces itself (its declared limits, a
        membership entry) when it joins, after a Redis error, when the
        registry had lost it, or when the services it runs changed."""
        services = frozenset(i["service"] for i in insts)
        announce = None
        if self.announce_due or services != self.announced:
            announce = {svc: (v.min, v.max) for svc, v in self.config.services.items()} if self.config else {}
        unknown = global_view.publish(
            self.redis, self.host, self.cpus, insts, events.now_ms(), totals(snap), announce
        )
        if announce is not None:
            self.announced = services
        self.announce_due = unknown
        self.published, self.published_at = shape, now
        self.published_rates = {i["instance"]: (i["load"], i["ring_drop_pps"] > 0) for i in insts}

    def sample(self, now: float, snap: dict[str, Any]) -> list[dict[str, Any]] | None:
        """This host's instances between the last two stats updates (one
        stats period, ~0.1 s), or None when the manager has published no
        new one since the last tick: what the detector judges."""
        last = self.last_update
        if (
            last is not None
            and last[1]["updates"] == snap["updates"]
            and last[1]["mgr_pid"] == snap["mgr_pid"]
        ):
            return None
        self.last_update = (now, snap)
        if last is None or last[1]["mgr_pid"] != snap["mgr_pid"]:
            return None
        seconds = (snap["updated_ns"] - last[1]["updated_ns"]) / 1e9
        out: list[dict[str, Any]] = global_view.rates(
            last[1], snap, seconds if seconds > 0 else now - last[0]
        )
        return out

    # ---- decisions: read the view, decide (decide.py), carry out ----------

    def limits(self, view: dict[str, Any], service: str) -> decide.Limits:
        return decide.limits(view, service, view["declared"].get(service, {}))

    def above_min(self) -> set[str]:
        """Services this host runs more instances of than its minimum: only
        for those can a scale-in pick an instance here, so only those are
        watched for a surplus."""
        assert self.config is not None
        have: dict[str, int] = {}
        for i in self.latest[1]:
            have[i["service"]] = have.get(i["service"], 0) + 1
        return {s for s, n in have.items() if s in self.config.services and n > self.config.services[s].min}

    def scale(self, now: float, sample: list[dict[str, Any]] | None) -> None:
        """One round: ``sample`` is this host's instances over the last stats
        period (None: no new one).  The detector and decide.py say what to
        do; this carries it out.  Every VIEW_EVERY s also: lost hosts,
        surplus, the reconcile step, stuck requests.  Each read of the view
        is of the services a decision is due for (services_view), never of
        the whole cluster."""
        assert self.config is not None and self.detector is not None and self.reconciler is not None
        if sample is not None:
            self.detector.observe_local(now, sample)
        over = self.detector.overloaded(now)
        periodic = now - self.view_at >= VIEW_EVERY
        if not over and not periodic:
            return
        now_ms = events.now_ms()
        lost: dict[str, set[str]] = {}
        watch: set[str] = set()
        if periodic:
            self.view_at = now
            lost = self.lost_hosts(now, now_ms)
            watch = self.above_min()
        short = {s for ran in lost.values() for s in ran if self.config.cluster_min.get(s, 0) > 0}
        peers = sorted(self.config.fabric) if periodic else []
        view = global_view.services_view(self.redis, set(over) | watch | short, now_ms, peers)
        if periodic:
            self.detector.observe_view(now, {"services": {s: view["services"].get(s, []) for s in watch}})
        for svc in over:
            self.carry_out(now, decide.scale_out(view, svc, self.host, self.limits(view, svc)))
        for svc in self.detector.surplus(now):
            if svc not in watch:
                continue
            d = decide.scale_in(
                view, svc, self.host, self.limits(view, svc), self.config.cluster_min.get(svc, 0)
            )
            if d is not None:
                self.carry_out(now, d)
        for svc, n in replace.missing(view, lost, self.config.cluster_min).items():
            gone = sorted(h for h, ran in lost.items() if svc in ran)
            self.carry_out(now, decide.replace(view, svc, n, self.host, self.limits(view, svc), gone))
        if periodic:
            self.reconciler.maybe(now, view, self.latest[0])
        if periodic and now - self.reclaimed_at >= self.config.policy.queue_timeout / 2:
            self.reclaimed_at = now
            self.reclaim(now_ms)

    def lost_hosts(self, now: float, now_ms: int) -> dict[str, set[str]]:
        """Hosts gone silent that did not leave cleanly -> what they ran.
        One round trip, as long as what changed (global_view.check): the
        membership entries since the last call and the registry's silent
        hosts."""
        if self.cursor is None:  # first call, or after a Redis error: whoever is alive now
            self.cursor = global_view.membership_tail(self.redis)
            for h, ran in global_view.members_now(self.redis, now_ms).items():
                self.losses.joined(h, ran)
        self.cursor, changes, silent = global_view.check(
            self.redis, self.cursor, now_ms, self.losses.suspects(now)
        )
        for h, ran in changes:
            if ran is None:
                self.losses.forget(h)
            else:
                self.losses.joined(h, ran)
        lost = self.losses.observe(silent, now)
        unchecked = self.losses.unchecked(lost)
        left = global_view.left_among(self.redis, unchecked)
        for h in unchecked:
            if h in left:
                self.losses.forget(h)
                del lost[h]
            else:
                self.losses.confirm(h)
                ran = " ".join(sorted(lost[h])) or "nothing"
                log.warning("%s is lost (out of the view; it ran %s)", h, ran)
        return lost

    def carry_out(self, now: float, d: decide.Decision) -> None:
        """What a decision says, under the service's cluster-wide cooldown."""
        assert self.config is not None and self.detector is not None
        if d.below_min:
            self.report_below_min(d.service, d.below_min, list(d.lost))
        if d.full:
            if now - self.full_logged.get(d.service, -1e9) >= self.config.policy.cooldown:
                self.full_logged[d.service] = now
                log.warning("%s is at its limit and no host has room for another instance", d.service)
                events.emit(self.redis, "cluster-full", d.service, origin=self.host)
        elif not d.requests or not global_view.take_cooldown(
            self.redis, d.service, self.host, int(self.config.policy.cooldown * 1000)
        ):
            return
        for req in d.requests:
            self.queue(d.service, req, d.why)
        if d.reset:
            self.detector.reset(d.service)

    def queue(self, svc: str, req: decide.Request, why: str) -> None:
        """Put one request on its host's stream and say so."""
        r = q.new_request(svc, req.host, self.host, kind=req.kind, instance=req.instance)
        q.enqueue(self.redis, r)
        q.settle(self.redis)  # on a replica before anyone acts on it
        if req.kind == "in":
            log.info("%s has %s: draining instance %s, request %s", svc, why, req.instance, r.id)
            return
        log.info("%s %s: one more on %s (%s), request %s", svc, why, req.host, req.reason, r.id)
        events.emit(
            self.redis,
            req.event,
            svc,
            host=req.host,
            reason=req.reason,
            origin=self.host,
            request=r.id,
            **dict(req.fields),
        )

    def report_below_min(self, svc: str, short: int, lost: list[str]) -> None:
        """Event below-min: once per loss for this scaler, and by one
        scaler of the cluster (the first to take the key)."""
        assert self.config is not None
        once = (svc, ",".join(lost))
        if once in self.below_reported:
            return
        self.below_reported.add(once)
        if not global_view.first_to_say_below(self.redis, svc, once[1], self.host):
            return  # another scaler said it
        detail = "no live host declares %s with room for %d more" % (svc, short)
        minimum = self.config.cluster_min.get(svc, 0)
        log.warning("%s lost with %s, under its minimum of %d: %s", svc, once[1], minimum, detail)
        events.emit(self.redis, "below-min", svc, lost=once[1], detail=detail, origin=self.host)

    def reclaim(self, now_ms: int) -> None:
        """Requests queued on hosts that died go to live ones (one read of
        the pending index when none is stuck)."""
        assert self.config is not None
        stuck = q.stuck(self.redis, int(self.config.policy.queue_timeout * 1000), now_ms)
        if not stuck:
            return
        live = global_view.live_among(self.redis, sorted({h for h, _e, _r in stuck}), now_ms)
        for dead, entry, req in stuck:
            if dead in live or req.kind != "out":
                continue  # a drain on a dead host has nothing left to drain
            view = global_view.services_view(self.redis, {req.service}, now_ms)
            to = decide.reclaim(view, req.service, dead, self.host, self.limits(view, req.service))
            if to is None:
                continue
            if q.move(self.redis, dead, entry, req, to, events.now_ms()) is not None:
                log.info("request %s queued on dead host %s moved to %s", req.id, dead, to)
                events.emit(self.redis, "reclaimed", req.service, request=req.id, dead=dead, host=to)

    # ---- loops ----------------------------------------------------------

    def serve(self) -> None:
        """Worker thread: carry out the requests queued for this host."""
        import docker  # deferred: the view alone does not need it

        from .worker import handle

        assert self.config is not None
        r = global_view.connect(
            self.redis_url, self.password_file, socket_timeout=5, socket_connect_timeout=2
        )
        client = docker.from_env()
        pending = True  # what was delivered before and never acked: asked until none is left
        while not self.stopping:
            try:
                got = q.read(r, self.host, block_ms=QUEUE_BLOCK_MS, pending=pending)
                pending = pending and bool(got)
                for entry, req in got:
                    handle(r, client, self.config, entry, req)
            except redis.RedisError as e:
                log.warning("queue: %s", e)
                pending = True
                time.sleep(1.0)

    def outage(self) -> None:
        """Redis could not be reached: it may come back empty (restarted) or
        be another server (a replica promoted).  Announce again, read the
        membership afresh, and give the others a grace period."""
        self.losses.outage()
        self.announce_due = True
        self.cursor = None

    def run(self) -> int:
        if self.config is not None:
            threading.Thread(target=self.serve, name="queue", daemon=True).start()
        backoff = self.interval
        while not self.stopping:
            try:
                self.tick()
                backoff = self.interval
            except redis.RedisError as e:
                log.warning("redis: %s; retrying in %.1f s", e, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                self.outage()
            time.sleep(backoff)
        try:
            declared = sorted(self.config.services) if self.config else []
            global_view.leave(self.redis, self.host, events.now_ms(), declared)
        except redis.RedisError as e:
            log.warning("could not leave the view (the others will see this host lost): %s", e)
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="onvm-scaler", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", required=True, help="the onvm host this agent serves")
    ap.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="Redis URL of the global view; replicated: redis+sentinel://HOST:PORT[,HOST:PORT...]/NAME[/DB]",
    )
    ap.add_argument(
        "--redis-password-file", metavar="FILE", help="the Redis password (onvm.nfv.onvm_state makes one)"
    )
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between heartbeats (default 0.1)")
    ap.add_argument("--stats-file", help="stats area (default /dev/shm/onvm-HOST.stats)")
    ap.add_argument("--config", help="scaling configuration (JSON, from role onvm_scaler); none: view only")
    ap.add_argument(
        "--metrics",
        metavar="[ADDR:]PORT",
        help="serve Prometheus metrics at http://ADDR:PORT/metrics (ADDR default 127.0.0.1)",
    )
    args = ap.parse_args(argv)
    if not name_ok(args.host):
        ap.error("--host: 1-31 characters of [A-Za-z0-9_.-]")
    if not 0.05 <= args.interval < global_view.HEARTBEAT_TTL_MS / 2000:
        ap.error("--interval must be at least 0.05 s and under half the heartbeat TTL")
    config = None
    if args.config:
        try:
            config = load(args.config)
        except ConfigError as e:
            ap.error("--config: %s" % e)
        if config.host != args.host:
            ap.error("--config is for host %s, not %s" % (config.host, args.host))
    listen = None
    if args.metrics:
        try:
            listen = metrics.parse_listen(args.metrics)
        except ValueError as e:
            ap.error("--metrics: %s" % e)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.redis_password_file and not os.access(args.redis_password_file, os.R_OK):
        ap.error("--redis-password-file: cannot read %s" % args.redis_password_file)
    agent = Agent(args.host, args.redis, args.interval, args.stats_file, config, args.redis_password_file)

    def stop(*_: object) -> None:
        agent.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if listen is not None:
        try:
            metrics.serve(args.host, lambda: agent.latest, *listen)
        except OSError as e:
            log.error("cannot serve metrics on %s:%d: %s", listen[0], listen[1], e)
            return 1
        log.info("metrics at http://%s:%d/metrics", *listen)
    log.info("serving host %s, view at %s%s", args.host, args.redis, ", scaling" if config else "")
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
