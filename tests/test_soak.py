"""Leaks: bench/soak.py for 30 s (10 minutes when run as the benchmark):
traffic through a chain while an NF instance is started, drained and
stopped over and over; at the end every mbuf is free again and the
manager's memory has not grown.  (The benchmark also kills the NF every
5 cycles; repeated kills leak mbufs today, see bench/results/soak.json and
the issue's notes: not asserted here until fixed.)"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from soak import checks_of, soak


@pytest.mark.dataplane
@pytest.mark.docker
def test_a_short_soak_leaks_no_mbuf_and_no_memory(
    tag: str, built: None, docker_client: Any, reliability: dict[str, Any]
) -> None:
    res = soak(30.0, tag, kill_every=0)
    reliability["soak_30s"] = res
    assert res["cycles"] >= 5
    failed = [name for name, ok in checks_of(res).items() if not ok]
    assert failed == [], res
    assert res["received"] <= res["sent"]
