"""Leaks: the soak run of bench/soak.py (onvm.lab.soak) for 30 s (10 minutes when run as the benchmark):
traffic through a chain while an NF instance is started, drained and
stopped over and over and the first one is killed every 3rd cycle; at the
end every mbuf is free again, each exactly once (the pool audit), and the
manager's memory has not grown."""

from __future__ import annotations

from typing import Any

import pytest

from onvm.lab.soak import checks_of, soak


@pytest.mark.dataplane
@pytest.mark.docker
def test_a_short_soak_leaks_no_mbuf_and_no_memory(
    tag: str, built: None, docker_client: Any, reliability: dict[str, Any]
) -> None:
    res = soak(30.0, tag, kill_every=3)
    reliability["soak_30s"] = res
    assert res["cycles"] >= 5 and res["nf_kills"] >= 2
    failed = [name for name, ok in checks_of(res).items() if not ok]
    assert failed == [], res
    assert res["received"] <= res["sent"]
    audit = res["pool_audit_end"]
    assert (audit["free"], audit["loose"]) == (audit["total"], 0), audit
