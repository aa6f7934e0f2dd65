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
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from typing import Any

import redis

from ansible_collections.onvm.nfv.plugins.module_utils import chains as ch
from ansible_collections.onvm.nfv.plugins.module_utils import global_view, placement
from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue as q
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlClient, CtlError, name_ok
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import StatsError, StatsReader, default_path

from . import events, metrics, replace, restore, standins
from .config import ConfigError, ScalerConfig, load
from .detect import Detector

log = logging.getLogger("onvm-scaler")


RATE_WINDOW = 0.3  # seconds the published rates and loads are taken over
# An idle host (no packets through its instances, nothing about to be
# decided) does not redo every tick what only changes with traffic:
HEARTBEAT_EVERY = 1.0  # s between heartbeats when nothing changed (the TTL is 3 s)
VIEW_EVERY = 0.5  # s between reads of the whole view (host loss, scale-in, stand-ins)
SYNC_EVERY = 5.0  # s between checks of the manager's chains and stand-ins when nothing changed
MAX_BACKOFF = 5.0  # seconds between retries while Redis cannot be reached, at most
# after a Redis error, how long absence from the view is not loss: every live
# agent is back within its back-off and heartbeats at once
LOSS_GRACE = MAX_BACKOFF + 1.0


def limits_key(host: str) -> str:
    return "%s:limits:%s" % (global_view.PREFIX, host)


def decided_on(view: dict[str, Any], service: str, excluded: set[str]) -> str:
    """What a placement of ``service`` was decided on, as JSON for its event:
    each live host's free cores, whether it runs the service, whether it was
    left out (its max reached, or it does not declare it) -- enough to check
    the choice against placement.place afterwards."""
    runs = placement.runners(view, service)
    return json.dumps(
        {
            h: {"free_cores": placement.free_cores(view, h), "runs": h in runs, "excluded": h in excluded}
            for h in sorted(view["hosts"])
        },
        sort_keys=True,
    )


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
        self.synced_at = -1e9
        self.synced: tuple[Any, ...] | None = None

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
        busy = any(i["rx_pps"] > 0 or i["busy"] >= 0.01 for i in insts)
        shape = tuple(sorted((i["service"], i["instance"], i["state"]) for i in insts))
        if busy or shape != self.published or now - self.published_at >= HEARTBEAT_EVERY:
            global_view.publish(self.redis, self.host, self.cpus, insts, events.now_ms(), totals(snap))
            if self.config is not None:
                self.publish_limits()
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

    # ---- scaling --------------------------------------------------------

    def publish_limits(self) -> None:
        assert self.config is not None
        lim: dict[Any, Any] = {s: json.dumps([v.min, v.max]) for s, v in self.config.services.items()}
        p = self.redis.pipeline()
        p.delete(limits_key(self.host))
        if lim:
            p.hset(limits_key(self.host), mapping=lim)
        p.pexpire(limits_key(self.host), global_view.HEARTBEAT_TTL_MS)
        p.execute()

    def limits(self, view: dict[str, Any], service: str) -> dict[str, tuple[int, int, int]]:
        """Host -> (instances it runs, its min, its max) of ``service``, for
        the live hosts whose inventory declares it."""
        count: dict[str, int] = {}
        for i in view["services"].get(service, []):
            count[i["host"]] = count.get(i["host"], 0) + 1
        out = {}
        for h in view["hosts"]:
            raw = self.redis.hget(limits_key(h), service)
            if raw is not None:
                lo, hi = json.loads(raw)
                out[h] = (count.get(h, 0), int(lo), int(hi))
        return out

    def eligible(self, view: dict[str, Any], service: str) -> set[str]:
        """Hosts that may take one more instance of ``service``: they declare
        it and run fewer than their max."""
        return {h for h, (n, _, hi) in self.limits(view, service).items() if n < hi}

    def cooldown(self, service: str) -> bool:
        """Take the service's cluster-wide cooldown; False if another host holds it."""
        assert self.config is not None
        ms = max(1, int(self.config.policy.cooldown * 1000))
        return bool(
            self.redis.set("%s:cooldown:%s" % (global_view.PREFIX, service), self.host, nx=True, px=ms)
        )

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
        """One round of decisions: ``sample`` is this host's instances over
        the last stats period (None: no new one), ``busy`` whether they carry
        traffic."""
        assert self.config is not None and self.detector is not None
        if sample is not None:
            self.detector.observe_local(now, sample)
        if not self.view_due(now, busy):
            return
        view = global_view.view(self.redis)
        self.view_at = now
        self.detector.observe_view(now, view)
        for svc in self.detector.overloaded(now):
            self.scale_out(now, svc, view)
        for svc in self.detector.surplus(now):
            self.scale_in(svc, view)
        lost = self.losses.observe(view, now)
        for h in self.losses.unchecked(lost):
            if global_view.has_left(self.redis, h):
                self.losses.forget(h)
                del lost[h]
            else:
                self.losses.confirm(h)
                ran = " ".join(sorted(lost[h])) or "nothing"
                log.warning("%s is lost (out of the view; it ran %s)", h, ran)
        for svc, n in replace.missing(view, lost, self.config.cluster_min).items():
            self.replace(svc, n, view, sorted(h for h, ran in lost.items() if svc in ran))
        snap, _ = self.latest
        # what the manager's chains and stand-ins follow from: who runs what
        # where, the loads steering goes by (rounded as stand-ins carry
        # them), the manager itself
        shape = (
            snap["mgr_pid"] if snap else 0,
            tuple(sorted(view["hosts"])),
            tuple(
                (svc, i["host"], round(20 * float(i.get("load", 0.0))))
                for svc, insts in view["services"].items()
                for i in insts
                if i["host"] != self.host
            ),
        )
        if shape != self.synced or now - self.synced_at >= SYNC_EVERY:
            self.sync_manager(view)
            self.synced, self.synced_at = shape, now
        self.reclaim(view)

    def sync_manager(self, view: dict[str, Any]) -> None:
        """Chains the manager lost (restarted) put back; stand-ins for the
        other hosts' instances brought in line with the view."""
        assert self.config is not None
        try:
            with CtlClient(self.host) as ctl:
                have = ch.current(ctl)
                restored = restore.sync(ctl, self.config.chains, have)
                if restored:
                    log.info("chains put back on the manager: %s", " ".join(restored))
                named = {s for c in have.values() for s in c["services"]}
                named |= {s for c in restored for s in self.config.chains[c]["services"]}
                changes = standins.sync(ctl, self.host, view, self.config.fabric, named)
            if changes:
                log.info("stand-ins: %s", " ".join(changes))
        except CtlError as e:
            log.warning("chains and stand-ins: %s", e)

    def scale_out(self, now: float, svc: str, view: dict[str, Any]) -> None:
        assert self.detector is not None and self.config is not None
        ok = self.eligible(view, svc)
        excluded = set(view["hosts"]) - ok
        where = placement.place(view, svc, self.host, exclude=excluded)
        if where.host is None:
            if now - self.full_logged.get(svc, -1e9) >= self.config.policy.cooldown:
                self.full_logged[svc] = now
                log.warning("%s is at its limit and no host has room for another instance", svc)
                events.emit(self.redis, "cluster-full", svc, origin=self.host)
            self.detector.reset(svc)
            return
        if not self.cooldown(svc):
            return
        self.queue_out(
            svc, where, "scale-out-requested", "at its limit here", view=decided_on(view, svc, excluded)
        )
        self.detector.reset(svc)

    def queue_out(self, svc: str, where: placement.Placement, event: str, why: str, **fields: str) -> None:
        """Queue one more instance of ``svc`` on ``where.host`` and say so."""
        req = q.new_request(svc, where.host, self.host)
        q.enqueue(self.redis, req)
        log.info("%s %s: one more on %s (%s), request %s", svc, why, where.host, where.reason, req.id)
        events.emit(
            self.redis,
            event,
            svc,
            host=where.host,
            reason=where.reason,
            origin=self.host,
            request=req.id,
            **fields,
        )

    def replace(self, svc: str, n: int, view: dict[str, Any], lost: list[str]) -> None:
        """Start ``n`` instances of ``svc`` on live hosts that declare it,
        the lost hosts' share; one scaler acts (the service's cooldown)."""
        assert self.config is not None
        lim = self.limits(view, svc)
        hosts = {h: dict(info) for h, info in view["hosts"].items()}
        plan: list[placement.Placement] = []
        for _ in range(n):
            ok = {h for h, (have, _, hi) in lim.items() if have + sum(p.host == h for p in plan) < hi}
            where = placement.place(
                {"hosts": hosts, "services": view["services"]}, svc, self.host, exclude=set(hosts) - ok
            )
            if where.host is None:
                break
            plan.append(where)
            hosts[where.host]["free_cores"] = where.free_cores - 1.0
        if len(plan) < n:
            self.report_below_min(svc, n - len(plan), lost)
        if not plan or not self.cooldown(svc):
            return
        names = ",".join(lost)
        for where in plan:
            self.queue_out(svc, where, "replace-requested", "lost with %s" % names, lost=names)

    def report_below_min(self, svc: str, short: int, lost: list[str]) -> None:
        """Event below-min: once per loss for this scaler, and by one
        scaler of the cluster (the first to take the key)."""
        assert self.config is not None
        once = (svc, ",".join(lost))
        if once in self.below_reported:
            return
        self.below_reported.add(once)
        key = "%s:below:%s:%s" % (global_view.PREFIX, *once)
        if not self.redis.set(key, self.host, nx=True, px=global_view.LEFT_TTL_MS):
            return  # another scaler said it
        detail = "no live host declares %s with room for %d more" % (svc, short)
        minimum = self.config.cluster_min.get(svc, 0)
        log.warning("%s lost with %s, under its minimum of %d: %s", svc, once[1], minimum, detail)
        events.emit(self.redis, "below-min", svc, lost=once[1], detail=detail, origin=self.host)

    def scale_in(self, svc: str, view: dict[str, Any]) -> None:
        assert self.detector is not None and self.config is not None
        # never under the cluster's minimum (a lost host's share re-placed
        # here is not a surplus); the least loaded instance among hosts
        # above their min; its host acts
        if len(view["services"].get(svc, [])) <= self.config.cluster_min.get(svc, 0):
            return
        lim = self.limits(view, svc)
        insts = [
            i
            for i in view["services"].get(svc, [])
            if i["host"] in lim and lim[i["host"]][0] > lim[i["host"]][1]
        ]
        if not insts:
            return
        least = min(insts, key=lambda i: (float(i.get("load", 0.0)), i["host"] != self.host, i["instance"]))
        if least["host"] != self.host:
            return
        if not self.cooldown(svc):
            return
        req = q.new_request(svc, self.host, self.host, kind="in", instance=str(least["instance"]))
        q.enqueue(self.redis, req)
        loads = " ".join(
            "%s/%s:%.2f" % (i["host"], i["instance"], float(i.get("load", 0.0)))
            for i in view["services"][svc]
        )
        log.info(
            "%s has an instance too many (loads %s): draining instance %s, request %s",
            svc,
            loads,
            least["instance"],
            req.id,
        )
        self.detector.reset(svc)

    def reclaim(self, view: dict[str, Any]) -> None:
        assert self.config is not None
        timeout = int(self.config.policy.queue_timeout * 1000)
        for dead, entry, req in q.orphans(self.redis, set(view["hosts"]), timeout, events.now_ms()):
            if req.kind != "out":
                continue  # a drain on a dead host has nothing left to drain
            ok = self.eligible(view, req.service)
            where = placement.place(view, req.service, self.host, exclude=(set(view["hosts"]) - ok) | {dead})
            if where.host is None:
                continue
            moved = q.move(self.redis, dead, entry, req, where.host, events.now_ms())
            if moved is not None:
                log.info("request %s queued on dead host %s moved to %s", req.id, dead, where.host)
                events.emit(
                    self.redis,
                    "reclaimed",
                    req.service,
                    request=req.id,
                    dead=dead,
                    host=where.host,
                )

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
