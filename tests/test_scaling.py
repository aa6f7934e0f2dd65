"""Auto-scaling on one host, for real: a chain whose `slow` NF takes at most
2,000 packets a second gets 3,000; onvm-scaler sees it at its limit, places
a second instance (here: the local host runs the service and has room),
starts it through its queue, and then every packet arrives; when the load
drops it drains the extra instance and stops it without losing a packet."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue
from onvm_lab import traffic
from onvm_lab.hugepages import ensure_free
from onvm_lab.manager import REPO, ManagerProcess
from onvm_lab.netns import VethPort, lab_ports
from onvm_lab.redis_server import RedisServer
from onvm_lab.single_host import VERSION, wait_until

CAP = 2000  # packets a second one slow instance takes
FLOWS = "1000-60000"  # flows of 10 frames each: new flows keep coming


def slow_conf() -> nc.ServiceConf:
    return nc.ServiceConf(image="onvm/slow:%s" % VERSION, args=["-r", str(CAP)], shared_core=True)


def running(mgr: ManagerProcess, service: str) -> list[dict[str, Any]]:
    return [n for n in mgr.call("nf_list")["nfs"] if n["service"] == service and n["state"] == "running"]


def events(r: Any, kind: str) -> list[dict[str, str]]:
    return [e for e in scale_queue.events(r) if e["kind"] == kind]


class Scaled:
    def __init__(self, mgr: ManagerProcess, ports: list[VethPort], redis: RedisServer, tmp: Any) -> None:
        self.mgr, self.ingress, self.egress, self.redis = mgr, ports[0], ports[1], redis
        self.seq = 0
        self.tmp = tmp
        self.scaler: subprocess.Popen[bytes] | None = None

    def start_scaler(self) -> None:
        conf = {
            "host": self.mgr.host,
            "services": {
                "slow": {
                    "image": slow_conf().image,
                    "args": slow_conf().args,
                    "shared_core": True,
                    "min": 1,
                    "max": 2,
                }
            },
            "policy": {"window": 0.5, "in_window": 2.0, "cooldown": 2.0, "drain_bound": 1.0},
        }
        path = self.tmp / "scaler.json"
        path.write_text(json.dumps(conf))
        with open(self.tmp / "scaler.log", "wb") as log:
            self.scaler = subprocess.Popen(
                [
                    os.path.join(REPO, ".venv/bin/onvm-scaler"),
                    "--host",
                    self.mgr.host,
                    "--redis",
                    self.redis.url,
                    "--config",
                    str(path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def stop_scaler(self) -> None:
        if self.scaler is not None:
            self.scaler.terminate()
            self.scaler.wait(10)

    def offer(self, count: int, rate: float) -> dict[str, int]:
        """Send ``count`` frames at ``rate`` through the chain, in flows not
        seen before; what arrived."""
        rx = traffic.Receiver(self.egress)
        try:
            traffic.send(self.ingress, count, dports=FLOWS, rate=rate, first=self.seq, flow_len=10)
            self.seq += count
            rx.wait_for(count, timeout=5)
        finally:
            counts = rx.stop()
        return counts


@pytest.fixture
def scaled(
    tag: str, built: None, docker_client: Any, redis_server: RedisServer, tmp_path: Any
) -> Iterator[Scaled]:
    ensure_free(160)
    host = "sc" + tag
    with lab_ports(tag, 2) as ports:
        mgr = ManagerProcess(host, [ports[0].vdev(0), ports[1].vdev(1)], core=0).start()
        sc = Scaled(mgr, ports, redis_server, tmp_path)
        try:
            nc.start(docker_client, nc.spec_for(host, "slow", slow_conf(), 0))
            mgr.call("chain_set", name="web", services=["slow"], egress="port1", match={"in_port": "port0"})
            yield sc
        finally:
            sc.stop_scaler()
            nc.remove_host(docker_client, host)
            mgr.stop()


@pytest.mark.dataplane
@pytest.mark.docker
def test_scale_out_locally_then_in_without_loss(scaled: Scaled) -> None:
    r = scaled.redis.client()
    # 1. no scaler yet: 1.5x what one instance takes, for 4 s -- its ring
    #    fills and about a sixth is dropped
    alone = scaled.offer(4 * 3000, 3000)
    assert alone["received"] < 4 * 3000 - 1000
    # 2. the scaler sees the instance at its limit and starts a second one,
    #    here: the local host runs the service and has room
    scaled.start_scaler()
    scaled.offer(4 * 3000, 3000)
    assert wait_until(lambda: len(running(scaled.mgr, "slow")) == 2, 20)
    (out,) = events(r, "scale-out-requested")
    assert (out["host"], out["reason"]) == (scaled.mgr.host, "local")
    assert len(events(r, "scale-out")) == 1
    # 3. the same load: new flows spread over both, all of it arrives
    both = scaled.offer(4 * 3000, 3000)
    assert both["received"] == 4 * 3000 and both["dups"] == 0
    # 4. a light load: one instance is enough; the extra one is drained and
    #    stopped while traffic flows, and not a packet is lost
    light = scaled.offer(10 * 400, 400)
    assert wait_until(lambda: len(events(r, "scale-in")) == 1, 20)
    assert len(running(scaled.mgr, "slow")) == 1
    (gone,) = events(r, "scale-in")
    assert gone["rx"] == gone["processed"]
    assert light["received"] == 10 * 400 and light["dups"] == 0
