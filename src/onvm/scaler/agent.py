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

This file is the loop: read the stats, publish, read the view when a
decision may be due, carry out what the pure decisions (decide.py) return,
run the reconcile step (reconcile.py).  The Redis keys are
module_utils/keys.py's.
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
# An idle host (no packets through its instances, nothing about to be
# decided) does not redo every tick what only changes with traffic:
HEARTBEAT_EVERY = 1.0  # s between heartbeats when nothing changed (the TTL is 3 s)
VIEW_EVERY = 0.5  # s between reads of the whole view (host loss, scale-in, stand-ins)
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
        self.view_at = -1e9
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
        busy = any(i["rx_pps"] > 0 or i["load"] >= 0.01 for i in insts)
        shape = tuple(sorted((i["service"], i["instance"], i["state"]) for i in insts))
        if busy or shape != self.published or now - self.published_at >= HEARTBEAT_EVERY:
            global_view.publish(self.redis, self.host, self.cpus, insts, events.now_ms(), totals(snap))
            if self.config is not None:
                lim = {svc: (v.min, v.max) for svc, v in self.config.services.items()}
                global_view.publish_limits(self.redis, self.host, lim)
            self.published, self.published_at = shape, now
        if self.config is not None:
            self.scale(now, sample, busy)

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
        declared = global_view.declared_limits(self.redis, sorted(view["hosts"]), service)
        return decide.limits(view, service, declared)

    def view_due(self, now: float, busy: bool) -> bool:
        """Whether this tick reads the whole view: when this host has
        traffic, when a scale-out may be due, when it runs more instances of
        a service than its minimum (a scale-in is decided on the view), and
        every VIEW_EVERY s anyway (host loss, other hosts' changes)."""
        assert self.detector is not None and self.config is not None
        if busy or self.detector.pending(now) or now - self.view_at >= VIEW_EVERY:
            return True
        _snap, insts = self.latest
        have: dict[str, int] = {}
        for i in insts:
            have[i["service"]] = have.get(i["service"], 0) + 1
        return any(n > self.config.services[s].min for s, n in have.items() if s in self.config.services)

    def scale(self, now: float, sample: list[dict[str, Any]] | None, busy: bool) -> None:
        """One round: ``sample`` is this host's instances over the last stats
        period (None: no new one), ``busy`` whether they carry traffic.  The
        detector and decide.py say what to do; this carries it out; then
        lost hosts, the reconcile step and orphaned requests."""
        assert self.config is not None and self.detector is not None and self.reconciler is not None
        if sample is not None:
            self.detector.observe_local(now, sample)
        if not self.view_due(now, busy):
            return
        view = global_view.view(self.redis)
        self.view_at = now
        self.detector.observe_view(now, view)
        for svc in self.detector.overloaded(now):
            self.carry_out(now, decide.scale_out(view, svc, self.host, self.limits(view, svc)))
        for svc in self.detector.surplus(now):
            d = decide.scale_in(
                view, svc, self.host, self.limits(view, svc), self.config.cluster_min.get(svc, 0)
            )
            if d is not None:
                self.carry_out(now, d)
        lost = self.lost_hosts(now, view)
        for svc, n in replace.missing(view, lost, self.config.cluster_min).items():
            gone = sorted(h for h, ran in lost.items() if svc in ran)
            self.carry_out(now, decide.replace(view, svc, n, self.host, self.limits(view, svc), gone))
        self.reconciler.maybe(now, view, self.latest[0])
        self.reclaim(view)

    def lost_hosts(self, now: float, view: dict[str, Any]) -> dict[str, set[str]]:
        """Hosts out of the view that did not leave cleanly -> what they ran."""
        lost = self.losses.observe(view, now)
        for h in self.losses.unchecked(lost):
            if global_view.has_left(self.redis, h):
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

    def reclaim(self, view: dict[str, Any]) -> None:
        """Requests queued on hosts that died go to live ones."""
        assert self.config is not None
        timeout = int(self.config.policy.queue_timeout * 1000)
        for dead, entry, req in q.orphans(self.redis, set(view["hosts"]), timeout, events.now_ms()):
            if req.kind != "out":
                continue  # a drain on a dead host has nothing left to drain
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
        while not self.stopping:
            try:
                for entry, req in q.read(r, self.host, block_ms=500):
                    handle(r, client, self.config, entry, req)
            except redis.RedisError as e:
                log.warning("queue: %s", e)
                time.sleep(1.0)

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
                self.losses.outage()
            time.sleep(backoff)
        try:
            global_view.leave(self.redis, self.host, events.now_ms())
        except redis.RedisError as e:
            log.warning("could not leave the view (the others will see this host lost): %s", e)
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="onvm-scaler", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", required=True, help="the onvm host this agent serves")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL of the global view")
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
