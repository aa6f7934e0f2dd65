"""Bursts do not scale; overload does.  A firewall -> forward chain with its
scaler on the deploy's default policy (collections/onvm/playbooks/group_vars/all.yml): bursts of
10,000 frames at the sender's full rate, every 2 s for 30 s, are absorbed
(no frame lost to a full ring) and start nothing.  A sustained overload
scales out once and does not flap (tests/test_scaling.py: the slow NF).
The firewall denies a quarter of the frames: drops by its verdict are its
work, not overload (they used to scale it out on every burst)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import StatsReader, default_path
from onvm.lab import bursts
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import wait_until


@pytest.mark.dataplane
@pytest.mark.docker
def test_bursts_an_instance_absorbs_start_nothing(
    tag: str, built: None, docker_client: Any, redis_server: RedisServer, tmp_path: Any
) -> None:
    r = redis_server.client()
    with bursts.burst_host(tag, docker_client, r, redis_server.url, tmp_path) as chain:
        sent = bursts.send_bursts(chain.ports[0])
        with StatsReader(default_path(chain.mgr.host)) as st:

            def counted() -> bool:
                web = next(c for c in st.snapshot()["chains"] if c["chain"] == "web")
                return bool(web["rx"] == sent["frames"])

            assert wait_until(counted, 20), "not every frame reached the chain"
            time.sleep(2.0)  # past the window of the last burst
            snap = st.snapshot()
    fw = next(s for s in snap["services"] if s["service"] == "firewall")
    assert sent["bursts"] >= 10
    # (a burst that meets a sleeping firewall on a loaded machine may lose a
    # few frames to its ring: that shows in one or two 0.1 s samples, never
    # a whole window, and is no reason to scale either)
    assert fw["rx"] + fw["rx_drop"] == sent["frames"]
    assert bursts.scale_events(r) == []
    assert fw["instances"] == 1
