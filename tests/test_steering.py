"""Steering across instances of one service: a new flow goes to the instance
with the most spare capacity, and a flow stays on its instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container
from onvm.lab import traffic
from onvm.lab.manager import ManagerProcess
from onvm.lab.netns import lab_ports
from onvm.lab.single_host import nf_spec, wait_until


def rx_of(mgr: ManagerProcess, instance: int) -> int:
    with mgr.stats() as st:
        return int(next(nf["rx"] for nf in st.snapshot()["nfs"] if nf["instance"] == instance))


def load_of(mgr: ManagerProcess, instance: int) -> int:
    with mgr.stats() as st:
        return int(next(nf["load_pct"] for nf in st.snapshot()["nfs"] if nf["instance"] == instance))


@pytest.mark.dataplane
def test_flows_stick_to_an_instance_and_spread_by_spare_capacity(
    tag: str, managers: Callable[..., ManagerProcess], docker_client: Any
) -> None:
    with lab_ports(tag, 2) as ports:
        mgr = managers([p.vdev(i) for i, p in enumerate(ports)])
        # two instances of one service "work"; 200k cycles a packet: ~10 kpps each
        a = nf_container.start(
            docker_client, nf_spec(mgr.host, "slow", 0, service="work", args=["-c", "200000"])
        )
        b = nf_container.start(
            docker_client, nf_spec(mgr.host, "slow", 1, service="work", args=["-c", "200000"])
        )
        mgr.call("chain_set", name="w", services=["work"], egress="port1", match={"in_port": "port0"})
        ia, ib = a["instance"], b["instance"]

        # One flow: every packet on one instance (equal loads: the first one).
        traffic.send(ports[0], 500, dports="7", rate=5_000)
        assert wait_until(lambda: rx_of(mgr, ia) + rx_of(mgr, ib) == 500)
        assert (rx_of(mgr, ia), rx_of(mgr, ib)) == (500, 0)

        # Keep that flow busy (8 kpps: ~80% of instance a), wait until the
        # manager sees a's load, then open 20 new flows: all go to b.
        busy = traffic.send(ports[0], 60_000, dports="7", rate=8_000, first=10_000, wait=False)
        try:
            assert wait_until(lambda: load_of(mgr, ia) >= 50, 20), load_of(mgr, ia)
            b_before = rx_of(mgr, ib)
            traffic.send(ports[0], 200, dports="100-119", rate=2_000, first=100_000)
            assert wait_until(lambda: rx_of(mgr, ib) == b_before + 200, 30)
        finally:
            busy.kill()
            busy.wait()
        nfs = {nf["instance"]: nf for nf in mgr.call("nf_list")["nfs"]}
        assert nfs[ib]["flows"] == 20
        assert nfs[ia]["flows"] == 1

        # The first flow comes back to its instance, whatever came since.
        assert wait_until(lambda: mgr.call("status")["ports"][0]["rx"] >= 500 + 200)
        a_before, b_before = rx_of(mgr, ia), rx_of(mgr, ib)
        traffic.send(ports[0], 300, dports="7", rate=5_000, first=200_000)
        assert wait_until(lambda: rx_of(mgr, ia) >= a_before + 300, 60)
        assert rx_of(mgr, ib) == b_before
