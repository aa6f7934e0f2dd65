"""Auto-scaling on one host, for real: a chain whose `slow` NF takes at most
2,000 packets a second gets 3,000; onvm-scaler sees it at its limit, places
a second instance (here: the local host runs the service and has room),
starts it through its queue, and then every packet arrives; when the load
drops it drains the extra instance and stops it without losing a packet."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue
from ansible_collections.onvm.nfv.plugins.modules import nf
from ansible_collections.onvm.nfv.tests.unit.plugins.modules.module_runner import ModuleRunner
from onvm.lab import scaler_proc, traffic
from onvm.lab.hugepages import ensure_free
from onvm.lab.manager import ManagerProcess
from onvm.lab.netns import VethPort, lab_ports
from onvm.lab.promscrape import free_port, scrape
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import VERSION, wait_until
from onvm.scaler.worker import LABEL_REQUEST

CAP = 2000  # packets a second one slow instance takes
FLOWS = "1000-60000"  # flows of 10 frames each: new flows keep coming


def slow_conf() -> nc.ServiceConf:
    return nc.ServiceConf(image="onvm/slow:%s" % VERSION, args=["-r", str(CAP)], shared_core=True)


def running(mgr: ManagerProcess, service: str) -> list[dict[str, Any]]:
    return [n for n in mgr.call("nf_list")["nfs"] if n["service"] == service and n["state"] == "running"]


def events(r: Any, kind: str) -> list[dict[str, str]]:
    return [e for e in scale_queue.events(r) if e["kind"] == kind]


class Scaled:
    """A host (manager, lab ports) with one instance of ``service`` in
    chain in -> service -> out, its Redis, and its scaler once started."""

    def __init__(
        self,
        mgr: ManagerProcess,
        ports: list[VethPort],
        redis: RedisServer,
        tmp: Any,
        service: str = "slow",
        conf: nc.ServiceConf | None = None,
    ) -> None:
        self.mgr, self.ingress, self.egress, self.redis = mgr, ports[0], ports[1], redis
        self.service, self.conf = service, conf or slow_conf()
        self.seq = 0
        self.tmp = tmp
        self.scaler: subprocess.Popen[bytes] | None = None
        self.metrics_port = free_port()

    def start_scaler(self, chains: dict[str, Any] | None = None, **policy: float) -> None:
        conf = {
            "services": {
                self.service: {
                    "image": self.conf.image,
                    "args": self.conf.args,
                    "shared_core": True,
                    "min": 1,
                    "max": 2,
                }
            },
            "policy": {"window": 0.5, "in_window": 2.0, "cooldown": 2.0, "drain_bound": 1.0, **policy},
            "chains": chains or {},
        }
        self.scaler = scaler_proc.start(self.mgr.host, self.redis.url, conf, self.tmp, self.metrics_port)

    def stop_scaler(self) -> None:
        scaler_proc.stop(self.scaler)

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


@contextlib.contextmanager
def scaled_host(
    tag: str, docker_client: Any, redis_server: RedisServer, tmp_path: Any, service: str, conf: nc.ServiceConf
) -> Iterator[Scaled]:
    ensure_free(160)
    host = "sc" + tag
    with lab_ports(tag, 2) as ports:
        mgr = ManagerProcess(host, [ports[0].vdev(0), ports[1].vdev(1)], core=0).start()
        sc = Scaled(mgr, ports, redis_server, tmp_path, service, conf)
        try:
            nc.start(docker_client, nc.spec_for(host, service, conf, 0))
            mgr.call("chain_set", name="web", services=[service], egress="port1", match={"in_port": "port0"})
            yield sc
        finally:
            sc.stop_scaler()
            nc.remove_host(docker_client, host)
            mgr.stop()


@pytest.fixture
def scaled(
    tag: str, built: None, docker_client: Any, redis_server: RedisServer, tmp_path: Any
) -> Iterator[Scaled]:
    with scaled_host(tag, docker_client, redis_server, tmp_path, "slow", slow_conf()) as sc:
        yield sc


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
    # sustained overload scaled out once, and nothing flapped meanwhile
    assert len(events(r, "scale-out-requested")) == 1 and events(r, "scale-in") == []
    # 4. a light load: one instance is enough; the extra one is drained and
    #    stopped while traffic flows, and not a packet is lost
    light = scaled.offer(10 * 400, 400)
    assert wait_until(lambda: len(events(r, "scale-in")) == 1, 20)
    assert len(running(scaled.mgr, "slow")) == 1
    (gone,) = events(r, "scale-in")
    assert gone["rx"] == gone["processed"]
    assert light["received"] == 10 * 400 and light["dups"] == 0
    # and its metrics counted each event
    got = scrape(scaled.metrics_port)
    for kind in ("scale-out-requested", "scale-out", "scale-in"):
        key = (("host", scaled.mgr.host), ("kind", kind), ("service", "slow"))
        assert got[("onvm_scale_events_total", key)] == 1.0, kind


@pytest.mark.dataplane
@pytest.mark.docker
def test_a_request_queued_on_a_dead_host_is_placed_here_once(scaled: Scaled, docker_client: Any) -> None:
    """A scale-out request sits on the queue of a host that stopped
    heartbeating (nobody reads it), delivered there twice (a retry): after
    the queue timeout this host's scaler moves it here, where slow runs and
    has room, and starts exactly one instance for it."""
    r = scaled.redis.client()
    dead = "gone" + scaled.mgr.host
    req = scale_queue.new_request("slow", dead, origin=dead)
    scale_queue.enqueue(r, req)
    scale_queue.enqueue(r, req)  # the same request again: one instance all the same
    assert len(running(scaled.mgr, "slow")) == 1
    # no load and a long in_window: nothing but the orphan makes it scale
    scaled.start_scaler(queue_timeout=1.0, in_window=600.0)
    assert wait_until(lambda: len(events(r, "scale-out")) >= 1, 30)
    assert wait_until(lambda: r.xlen(scale_queue.stream_key(dead)) == 0, 30)
    assert wait_until(lambda: len(running(scaled.mgr, "slow")) == 2, 20)
    (moved, *more) = events(r, "reclaimed")
    assert (moved["request"], moved["dead"], moved["host"]) == (req.id, dead, scaled.mgr.host)
    (started,) = events(r, "scale-out")
    assert started["request"] == req.id
    labelled = [
        c for c in nc.find(docker_client, scaled.mgr.host, "slow") if c.labels.get(LABEL_REQUEST) == req.id
    ]
    assert [c.status for c in labelled] == ["running"]
    assert scale_queue.state(r, req.id)["state"] == "done"
    # the retry's entry was moved too, and started nothing more
    assert all(e["request"] == req.id for e in more)
    assert len(running(scaled.mgr, "slow")) == 2


@pytest.mark.dataplane
@pytest.mark.docker
def test_the_nf_module_keeps_the_scalers_count_and_drains_above_a_lowered_max(
    scaled: Scaled, docker_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ansible in charge without fighting the scaler: with a second instance
    (as the scaler would start it), `onvm.nfv.nf` with instances 1, max 2
    changes nothing; lowering max_instances to 1 drains the surplus one and
    stops it while traffic flows through both, and not a frame is lost."""
    run = ModuleRunner(capsys)
    nc.start(docker_client, nc.spec_for(scaled.mgr.host, "slow", slow_conf(), 1))
    assert len(running(scaled.mgr, "slow")) == 2
    args = dict(
        host=scaled.mgr.host,
        service="slow",
        image=slow_conf().image,
        args=slow_conf().args,
        shared_core=True,
        instances=1,
        drain_bound=1.0,
    )
    r = run(nf.main, max_instances=2, **args)
    assert r["changed"] is False and len(r["instances"]) == 2

    # 1,500 frames a second, in flows of 10, over both instances (one takes 2,000)
    n, rate = 12_000, 1500.0
    rx = traffic.Receiver(scaled.egress)
    try:
        sender = traffic.send(scaled.ingress, n, dports=FLOWS, rate=rate, first=0, flow_len=10, wait=False)
        assert wait_until(lambda: all(i["processed"] > 0 for i in running(scaled.mgr, "slow")), 10)
        r = run(nf.main, max_instances=1, **args)
        assert sender.wait(60) == 0
        counts = rx.wait_for(n, timeout=10)
    finally:
        counts = rx.stop()
    assert r["changed"] and r["removed"] == [nc.instance_name(scaled.mgr.host, "slow", 1)]
    assert [i["container"] for i in r["instances"]] == [nc.instance_name(scaled.mgr.host, "slow", 0)]
    assert (counts["received"], counts["dups"]) == (n, 0)
    assert len(running(scaled.mgr, "slow")) == 1
