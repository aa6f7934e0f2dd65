"""Prometheus metrics from onvm-scaler: a scrape in the text format, with
host/port, host/service/nf, host/service and host/chain labels, whose
counters rise by exactly the frames pushed through a chain; the service's
and the chain's totals do not go back when its instance goes and another
comes; bad --metrics values are refused."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable

import pytest

from onvm.lab import traffic
from onvm.lab.manager import REPO, ManagerProcess, binary
from onvm.lab.netns import lab_ports
from onvm.lab.promscrape import free_port, scrape
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import wait_until

SCALER = os.path.join(REPO, ".venv/bin/onvm-scaler")


@pytest.mark.dataplane
def test_metrics_count_what_went_through_the_chain(
    tag: str, managers: Callable[..., ManagerProcess], redis_server: RedisServer
) -> None:
    with lab_ports(tag, 2) as ports:
        mgr = managers([p.vdev(i) for i, p in enumerate(ports)])
        h = mgr.host

        def start_fwd() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [binary("forward"), "--host", h, "--service", "fwd"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        def push(n: int) -> None:
            """n frames through the chain, every one out of port1."""
            rx = traffic.Receiver(ports[1])
            try:
                traffic.send(ports[0], n, dports="1000-1099", rate=5000)
                assert rx.wait_for(n)["received"] == n
            finally:
                rx.stop()

        nf = start_fwd()
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
                (("host", h), ("nf", inst), ("service", "fwd")),
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
            push(n)
            assert wait_until(lambda: scrape(port)[done] - before[done] == n, 10)
            after = scrape(port)
            assert after[tx1] - before[tx1] == n
            assert after[rx0] - before[rx0] >= n  # and whatever else the kernel put on the veth
            rcv = ("onvm_instance_received_packets_total", done[1])
            assert after[rcv] - before[rcv] == n
            assert ("onvm_instance_busy_ratio", done[1]) in after
            svc_done = ("onvm_service_processed_packets_total", (("host", h), ("service", "fwd")))
            chain_in = ("onvm_chain_received_packets_total", (("chain", "c"), ("host", h)))
            chain_out = ("onvm_chain_transmitted_packets_total", (("chain", "c"), ("host", h)))
            assert after[svc_done] - before.get(svc_done, 0.0) == n
            assert (after[chain_in], after[chain_out]) == (n, n)

            # the instance goes, another comes: per-instance series end
            # with theirs, the service's and the chain's totals go on
            nf.terminate()
            nf.wait(10)
            assert wait_until(lambda: done not in scrape(port), 10)
            assert scrape(port)[svc_done] == after[svc_done]
            nf = start_fwd()
            assert wait_until(
                lambda: any(
                    i["service"] == "fwd" and i["state"] == "running" for i in mgr.call("nf_list")["nfs"]
                ),
                20,
            )
            push(n)
            assert wait_until(lambda: scrape(port)[svc_done] - after[svc_done] == n, 10)
            final = scrape(port)
            assert (final[chain_in], final[chain_out]) == (2 * n, 2 * n)
            assert final[("onvm_service_instances", svc_done[1])] == 1
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
