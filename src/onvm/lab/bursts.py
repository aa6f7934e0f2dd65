"""Bursts an instance absorbs, the way an operator sends them: 10,000
frames at the sender's full rate, every 2 s, for 30 s.  The scaler must
start nothing for them (tests/test_bursts.py, bench/scaling.py counts the
scale events it started anyway: false scale-outs)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.onvm.nfv.plugins.module_utils import global_view, scale_queue

from . import scaler_proc, traffic
from .manager import REPO
from .netns import VethPort
from .single_host import VERSION, Chain, firewall_forward, wait_until

FULL_RATE = 10_000_000.0  # frames a second: as fast as the sender goes
SCALE_KINDS = ("scale-out-requested", "scale-out", "scale-in")


def scale_events(r: Any) -> list[dict[str, str]]:
    return [e for e in scale_queue.events(r, 1000) if e["kind"] in SCALE_KINDS]


def send_bursts(
    port: VethPort, count: int = 10_000, every: float = 2.0, seconds: float = 30.0
) -> dict[str, Any]:
    """Send ``count`` frames at full rate every ``every`` s for ``seconds``;
    how many bursts, frames, and how long each burst took to send."""
    took = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        t0 = time.monotonic()
        traffic.send(port, count, dports="1000-4999", rate=FULL_RATE, first=n * count)
        took.append(round(time.monotonic() - t0, 3))
        n += 1
        time.sleep(max(0.0, t0 + every - time.monotonic()))
    return {"bursts": n, "frames": n * count, "send_seconds": took}


def deploy_policy() -> dict[str, float]:
    """The scaling policy deploy.yml gives a host by default (the collection's
    playbooks/group_vars/all.yml)."""
    with open(os.path.join(REPO, "collections/onvm/playbooks/group_vars/all.yml"), encoding="utf-8") as f:
        policy: dict[str, float] = yaml.safe_load(f)["onvm_scaling"]
    return policy


@contextlib.contextmanager
def burst_host(tag: str, client: Any, redis: Any, redis_url: str, where: Path) -> Iterator[Chain]:
    """firewall -> forward (single_host.firewall_forward) with its scaler on
    the deploy's default policy, up and heartbeating; all gone afterwards."""
    with firewall_forward(tag, client) as chain:
        conf = {
            "services": {
                "firewall": {"image": "onvm/firewall:%s" % VERSION, "min": 1, "max": 4},
                "forward": {"image": "onvm/forward:%s" % VERSION, "min": 1, "max": 1},
            },
            "policy": deploy_policy(),
        }
        scaler = scaler_proc.start(chain.mgr.host, redis_url, conf, where)
        try:
            if not wait_until(lambda: chain.mgr.host in global_view.alive_hosts(redis), 20):
                raise RuntimeError("the scaler of %s did not come up" % chain.mgr.host)
            yield chain
            if scaler.poll() is not None:
                raise RuntimeError("the scaler of %s exited" % chain.mgr.host)
        finally:
            scaler_proc.stop(scaler)
