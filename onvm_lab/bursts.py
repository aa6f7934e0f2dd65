"""Bursts an instance absorbs, the way an operator sends them: 10,000
frames at the sender's full rate, every 2 s, for 30 s.  The scaler must
start nothing for them (tests/test_bursts.py, bench/scaling.py counts the
scale events it started anyway: false scale-outs)."""

from __future__ import annotations

import time
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue

from . import traffic
from .netns import VethPort

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
