"""Packets through a real chain: two af_packet ports on veth pairs whose
peers sit in namespaces, firewall -> forward as containers, frames counted
at the far end and in the stats area."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from onvm.lab import traffic
from onvm.lab.manager import ManagerProcess
from onvm.lab.pktio import parse_range
from onvm.lab.single_host import Chain, firewall_forward, wait_until

DPORTS = "1000-4999"


def denied(count: int, first: int = 0) -> int:
    """Frames the default rules deny (udp dport 1000-1999) among those sent."""
    ports = parse_range(DPORTS)
    return sum(1 for s in range(first, first + count) if 1000 <= ports[s % len(ports)] <= 1999)


@pytest.fixture
def chain(tag: str, managers: Callable[..., ManagerProcess], docker_client: Any) -> Iterator[Chain]:
    with firewall_forward(tag, docker_client, make_manager=managers) as c:
        yield c


@pytest.mark.dataplane
def test_firewall_forward_chain_delivers_exactly_what_rules_allow(chain: Chain) -> None:
    n = 10_000
    rx = traffic.Receiver(chain.ports[1])
    try:
        # 20 kpps: a 2048-packet ring then covers 100 ms of an NF not getting a core
        traffic.send(chain.ports[0], n, dports=DPORTS, rate=20_000)
        assert wait_until(lambda: chain.nf(chain.fw["instance"]).get("processed") == n)
        expect = n - denied(n)
        counts = rx.wait_for(expect)
        assert wait_until(lambda: chain.nf(chain.fwd["instance"]).get("tx") == expect)
    finally:
        counts = rx.stop()
    fw = chain.nf(chain.fw["instance"])
    assert counts["received"] == expect
    assert counts["dups"] == 0
    assert fw["dropped"] == denied(n) == n - expect
    with chain.mgr.stats() as st:
        snap = st.snapshot()
    assert snap["ports"][1]["tx"] == expect
    assert snap["ports"][1]["tx_drop"] == 0


@pytest.mark.dataplane
def test_killing_an_nf_mid_traffic_returns_its_mbufs(chain: Chain, docker_client: Any) -> None:
    with chain.mgr.stats() as st:
        start = st.snapshot()["pool"]
    assert start["avail"] == start["size"]
    sender = traffic.send(chain.ports[0], 150_000, dports=DPORTS, rate=50_000, wait=False)
    try:
        assert wait_until(lambda: chain.nf(chain.fwd["instance"]).get("rx", 0) > 2000)
        docker_client.containers.get(chain.fwd["container"]).kill()  # SIGKILL
        killed = time.monotonic()
        assert wait_until(lambda: chain.nf(chain.fwd["instance"]).get("state") != "running", 5)
        noticed = time.monotonic() - killed
        running = [nf["service"] for nf in chain.mgr.call("nf_list")["nfs"] if nf["state"] == "running"]
        assert running == ["firewall"]
    finally:
        sender.wait(120)
    assert noticed < 1.0, "manager took %.2f s to notice" % noticed

    def pool_back() -> bool:
        with chain.mgr.stats() as st:
            return bool(st.snapshot()["pool"]["avail"] == start["avail"])

    assert wait_until(pool_back, 20), chain.mgr.call("status")


@pytest.mark.dataplane
def test_chain_swap_under_traffic_loses_no_packet(chain: Chain) -> None:
    n = 40_000
    rx = traffic.Receiver(chain.ports[1])
    try:
        sender = traffic.send(chain.ports[0], n, dports=DPORTS, rate=20_000, wait=False)
        assert wait_until(lambda: chain.nf(chain.fw["instance"]).get("processed", 0) > 5_000)
        chain.set_chain(["forward"])  # firewall out of the path
        fw_mid = chain.nf(chain.fw["instance"])["processed"]
        assert wait_until(lambda: chain.nf(chain.fwd["instance"]).get("rx", 0) > fw_mid + 5_000)
        chain.set_chain(["firewall", "forward"])  # and back in
        assert sender.wait(120) == 0

        def accounted() -> bool:
            return bool(rx.counts()["received"] + chain.nf(chain.fw["instance"])["dropped"] >= n)

        assert wait_until(accounted)
    finally:
        counts = rx.stop()
    fw = chain.nf(chain.fw["instance"])
    fwd = chain.nf(chain.fwd["instance"])
    assert counts["dups"] == 0
    assert counts["received"] + fw["dropped"] == n
    assert 0 < fw["dropped"] < denied(n)  # the firewall was bypassed for a while
    assert fw["rx_drop"] == fwd["rx_drop"] == fw["tx_drop"] == fwd["tx_drop"] == 0
