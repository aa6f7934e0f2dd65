"""Prometheus metrics from onvm-scaler: a scrape in the text format, with
host/port and host/service/instance labels, whose counters rise by exactly
the frames pushed through a chain; bad --metrics values are refused."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable

import pytest

from onvm_lab import traffic
from onvm_lab.manager import REPO, ManagerProcess, binary
from onvm_lab.netns import lab_ports
from onvm_lab.promscrape import free_port, scrape
from onvm_lab.redis_server import RedisServer
from onvm_lab.single_host import wait_until

SCALER = os.path.join(REPO, ".venv/bin/onvm-scaler")


@pytest.mark.dataplane
def test_metrics_count_what_went_through_the_chain(
    tag: str, managers: Callable[..., ManagerProcess], redis_server: RedisServer
) -> None:
    with lab_ports(tag, 2) as ports:
        mgr = managers([p.vdev(i) for i, p in enumerate(ports)])
        h = mgr.host
        nf = subprocess.Popen(
            [binary("forward"), "--host", h, "--service", "fwd"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port = free_port()
        agent = subprocess.Popen(
            [SCALER, "--host", h, "--redis", redis_server.url, "--metrics", "127.0.0.1:%d" % port],
            stderr=subprocess.DEVNULL,
        )
        try:
            assert wait_until(lambda: any(n["service"] == "fwd" for n in mgr.call("nf_list")["nfs"]), 20)
            inst = str(next(n["instance"] for n in mgr.call("nf_list")["nfs"] if n["service"] == "fwd"))
            mgr.call(
                "chain_set",
                name="c",
                services=["fwd"],
                egress="port1",
                match={"in_port": "port0", "proto": "udp"},
            )
            rx0 = (
                "onvm_port_received_packets_total",
                (("device", "net_af_packet0"), ("host", h), ("port", "0")),
            )
            tx1 = (
                "onvm_port_transmitted_packets_total",
                (("device", "net_af_packet1"), ("host", h), ("port", "1")),
            )
            done = (
                "onvm_instance_processed_packets_total",
                (("host", h), ("instance", inst), ("service", "fwd")),
            )

            def ready() -> bool:
                try:
                    return done in scrape(port)
                except OSError:
                    return False

            assert wait_until(ready, 20)
            before = scrape(port)
            assert before[("onvm_up", (("host", h),))] == 1.0
            assert before[("onvm_pool_size_mbufs", (("host", h),))] > 0

            n = 500
            rx = traffic.Receiver(ports[1])
            try:
                traffic.send(ports[0], n, dports="1000-1099", rate=5000)
                assert rx.wait_for(n)["received"] == n
            finally:
                rx.stop()
            assert wait_until(lambda: scrape(port)[done] - before[done] == n, 10)
            after = scrape(port)
            assert after[tx1] - before[tx1] == n
            assert after[rx0] - before[rx0] >= n  # and whatever else the kernel put on the veth
            rcv = ("onvm_instance_received_packets_total", done[1])
            assert after[rcv] - before[rcv] == n
            assert ("onvm_instance_busy_ratio", done[1]) in after
        finally:
            for p in (agent, nf):
                p.terminate()
                p.wait(10)


def test_bad_metrics_addresses_are_refused(redis_server: RedisServer) -> None:
    out = subprocess.run(
        [SCALER, "--host", "nobody", "--redis", redis_server.url, "--metrics", "127.0.0.1:http"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "--metrics: expected PORT or ADDR:PORT" in out.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        out = subprocess.run(
            [SCALER, "--host", "nobody", "--redis", redis_server.url, "--metrics", "127.0.0.1:%d" % busy],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert out.returncode == 1 and "cannot serve metrics on 127.0.0.1:%d" % busy in out.stderr
