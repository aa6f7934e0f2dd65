"""onvm-scaler: keep this host's part of the global view current.

    onvm-scaler --host lab1 --redis redis://198.18.0.1:6379/0 [--interval 0.5]

Every interval it reads the host's stats area (through cffi, the layout of
native/include/onvm/onvm_stats.h) and publishes a heartbeat, the host's free
cores and each instance's rates in Redis.  No manager, no heartbeat: the host
drops out of the view.  Redis down: it logs, backs off, reconnects.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from typing import Any

import redis

from ansible_collections.onvm.nfv.plugins.module_utils import global_view
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import name_ok
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import StatsError, StatsReader, default_path

log = logging.getLogger("onvm-scaler")


class Agent:
    def __init__(self, host: str, redis_url: str, interval: float, stats_path: str | None = None) -> None:
        self.host = host
        self.interval = interval
        self.stats_path = stats_path or default_path(host)
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.reader: StatsReader | None = None
        self.prev: dict[str, Any] | None = None
        self.prev_t = 0.0
        self.stopping = False
        self.cpus = os.cpu_count() or 1

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
            self.prev = None
            return
        insts = global_view.rates(self.prev, snap, now - self.prev_t)
        self.prev, self.prev_t = snap, now
        global_view.publish(self.redis, self.host, self.cpus, insts, int(time.time() * 1000))

    def run(self) -> int:
        backoff = self.interval
        while not self.stopping:
            try:
                self.tick()
                backoff = self.interval
            except redis.RedisError as e:
                log.warning("redis: %s; retrying in %.1f s", e, backoff)
                backoff = min(backoff * 2, 5.0)
            time.sleep(backoff)
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="onvm-scaler", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", required=True, help="the onvm host this agent serves")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL of the global view")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between heartbeats (default 0.5)")
    ap.add_argument("--stats-file", help="stats area (default /dev/shm/onvm-HOST.stats)")
    args = ap.parse_args(argv)
    if not name_ok(args.host):
        ap.error("--host: 1-31 characters of [A-Za-z0-9_.-]")
    if not 0.05 <= args.interval < global_view.HEARTBEAT_TTL_MS / 2000:
        ap.error("--interval must be at least 0.05 s and under half the heartbeat TTL")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    agent = Agent(args.host, args.redis, args.interval, args.stats_file)

    def stop(*_: object) -> None:
        agent.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving host %s, view at %s", args.host, args.redis)
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
