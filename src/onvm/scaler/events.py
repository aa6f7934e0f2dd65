"""Scale events: each goes on the cluster's event stream in Redis (what
`onvm cluster` and the lab demo read) and is counted for this host's
metrics (onvm_scale_events_total).  The one way the daemon reports them."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue as q

_lock = threading.Lock()
_counts: Counter[tuple[str, str]] = Counter()


def now_ms() -> int:
    return int(time.time() * 1000)


def emit(r: Any, kind: str, service: str, **fields: str | int | float) -> str:
    """Count the event, then write it (a Redis error propagates: the count
    stays, the event happened)."""
    with _lock:
        _counts[(kind, service)] += 1
    return str(q.event(r, kind, now_ms(), service=service, **fields))


def counts() -> dict[tuple[str, str], int]:
    """(kind, service) -> events this process emitted."""
    with _lock:
        return dict(_counts)
