"""Faults, for real.  An NF's process killed (-9) under traffic: the manager
stops steering to it within 1 s (its registration connection closes), takes
back its packets, the flows it had move to the other instance, Docker's
restart policy brings the service back to its count, every mbuf returns to
the pool, and the frames lost are exactly those the manager reports.  Redis
frozen: the data plane forwards on, the scaler backs off, and a queued
scale request runs exactly once when Redis is back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import global_view, scale_queue
from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from onvm.lab import traffic
from onvm.lab.manager import ManagerProcess
from onvm.lab.netns import lab_ports
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import VERSION, nf_spec, wait_until

from .test_scaling import running as running_of
from .test_scaling import scaled_host

FLOWS = "1000-60000"
RESTART_BOUND = 30.0  # seconds from the manager's restart to traffic through the chain again


def running(mgr: ManagerProcess, service: str) -> dict[int, dict[str, Any]]:
    return {
        n["instance"]: n
        for n in mgr.call("nf_list")["nfs"]
        if n["service"] == service and n["state"] == "running"
    }


@pytest.mark.dataplane
@pytest.mark.docker
def test_a_killed_nf_is_replaced_and_what_it_held_is_accounted_for(
    tag: str, managers: Callable[..., ManagerProcess], docker_client: Any, reliability: dict[str, Any]
) -> None:
    with lab_ports(tag, 2) as ports:
        mgr = managers([p.vdev(i) for i, p in enumerate(ports)])
        for i in range(2):
            nc.start(docker_client, nf_spec(mgr.host, "forward", i, service="fw", shared_core=True))
        mgr.call("chain_set", name="c", services=["fw"], egress="port1", match={"in_port": "port0"})
        before = {i: n["pid"] for i, n in running(mgr, "fw").items()}
        assert len(before) == 2
        status0 = mgr.call("status")
        # instance 0 on purpose: fresh mbufs' metadata is zeros, and a reclaim
        # of instance 0 once took every never-used mbuf for its own (freed twice)
        victim_id = 0
        victim = next(
            nc.instance_name(mgr.host, "forward", i)
            for i in range(2)
            if _pid(docker_client, nc.instance_name(mgr.host, "forward", i)) == running(mgr, "fw")[0]["pid"]
        )

        n, rate = 30_000, 5_000.0
        rx = traffic.Receiver(ports[1])
        sender = traffic.send(ports[0], n, dports=FLOWS, rate=rate, flow_len=10, wait=False)
        try:
            assert wait_until(lambda: rx.counts()["received"] >= 5_000, 20)
            assert all(p["flows"] > 0 for p in running(mgr, "fw").values())
            # a crash: the process dies under Docker (`docker kill` would
            # count as a stop by hand, which no restart policy undoes)
            os.kill(_pid(docker_client, victim), signal.SIGKILL)
            killed = time.monotonic()
            assert wait_until(lambda: victim_id not in running(mgr, "fw"), 5)
            noticed = time.monotonic() - killed
            # Docker's restart policy: the service is back to two instances
            assert wait_until(lambda: len(running(mgr, "fw")) == 2, 30)
            assert sender.wait(60) == 0
            counts = rx.wait_for(n, timeout=10)
        finally:
            counts = rx.stop()
        assert noticed <= 1.0, noticed
        assert counts["dups"] == 0
        # every frame lost is one the manager took back from the dead NF or
        # could not steer meanwhile, and no more than one ring's worth
        status = mgr.call("status")
        ports_now = {p["name"]: p for p in status["ports"]}
        ports_then = {p["name"]: p for p in status0["ports"]}
        steer_drops = sum(ports_now[k]["steer_drop"] - ports_then[k]["steer_drop"] for k in ports_now)
        lost = n - counts["received"]
        reclaimed = status["reclaimed"] - status0["reclaimed"]
        assert lost == reclaimed + steer_drops, (lost, reclaimed, steer_drops)
        assert lost <= 2048 + 32
        # the replacement is a new process, and every mbuf is back in the pool
        assert wait_until(
            lambda: mgr.call("status")["pool"]["avail"] == mgr.call("status")["pool"]["size"], 10
        )
        # and each one once: no pointer freed twice, none in nobody's hands
        audit = mgr.call("pool_audit")
        assert (audit["free"], audit["loose"]) == (audit["total"], 0), audit
        reliability["nf_killed_under_traffic"] = {
            "survived": True,
            "noticed_s": round(noticed, 3),
            "frames_sent": n,
            "frames_lost": lost,
            "reclaimed_by_manager": reclaimed,
            "unsteerable": steer_drops,
        }


def _pid(client: Any, name: str) -> int:
    c = client.containers.get(name)
    return int(c.attrs["State"]["Pid"])


@pytest.mark.dataplane
@pytest.mark.docker
def test_a_redis_outage_stops_no_packet_and_loses_no_request(
    tag: str,
    built: None,
    docker_client: Any,
    redis_server: RedisServer,
    tmp_path: Any,
    reliability: dict[str, Any],
) -> None:
    """Redis frozen (SIGSTOP: it neither answers nor forgets): the chain
    carries every frame, the scaler backs off without dying; a scale-out
    request queued before is carried out exactly once when Redis is back."""
    conf = nc.ServiceConf(image="onvm/forward:%s" % VERSION, shared_core=True)
    with scaled_host(tag, docker_client, redis_server, tmp_path, "fw", conf) as sc:
        r = redis_server.client()
        req = scale_queue.new_request("fw", sc.mgr.host, origin="test")
        scale_queue.enqueue(r, req)
        assert redis_server.proc is not None
        os.kill(redis_server.proc.pid, signal.SIGSTOP)
        try:
            sc.start_scaler(in_window=600.0)
            got = sc.offer(5000, 2500)
            assert (got["received"], got["dups"]) == (5000, 0)  # no Redis on the packet path
            log = tmp_path / "scaler.log"
            assert wait_until(lambda: "redis" in log.read_text().lower(), 30), log.read_text()
            assert sc.scaler is not None and sc.scaler.poll() is None  # backing off, not dead
            assert len(running_of(sc.mgr, "fw")) == 1  # nothing started without Redis
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        assert wait_until(lambda: (scale_queue.state(r, req.id) or {}).get("state") == "done", 60)
        assert len(running_of(sc.mgr, "fw")) == 2
        outs = [e for e in scale_queue.events(r) if e["kind"] == "scale-out"]
        assert [e["request"] for e in outs] == [req.id]
        assert r.xlen(scale_queue.stream_key(sc.mgr.host)) == 0
        reliability["redis_frozen"] = {
            "survived": True,
            "frames_sent_during": 5000,
            "frames_lost_during": 5000 - got["received"],
            "scale_requests_queued": 1,
            "scale_requests_run": len(outs),
        }


@pytest.mark.dataplane
@pytest.mark.docker
def test_a_restarted_manager_gets_its_nfs_and_chain_back(
    tag: str,
    built: None,
    docker_client: Any,
    redis_server: RedisServer,
    tmp_path: Any,
    reliability: dict[str, Any],
) -> None:
    """The manager killed (-9) and started again (as systemd would): the host
    leaves the global view, its NF re-attaches by itself (restart policy),
    the scaler puts its chain back from its config, and the chain carries
    traffic again within RESTART_BOUND seconds; the host is back in the view."""
    conf = nc.ServiceConf(image="onvm/forward:%s" % VERSION, shared_core=True)
    with scaled_host(tag, docker_client, redis_server, tmp_path, "fw", conf) as sc:
        r = redis_server.client()
        sc.start_scaler(
            chains={"web": {"services": ["fw"], "egress": "port1", "match": {"in_port": "port0"}}}
        )
        assert (sc.offer(1000, 2000)["received"]) == 1000
        assert wait_until(lambda: sc.mgr.host in global_view.view(r)["hosts"], 10)
        assert sc.mgr.proc is not None
        sc.mgr.proc.kill()
        sc.mgr.proc.wait()
        assert wait_until(lambda: sc.mgr.host not in global_view.view(r)["hosts"], 5)  # heartbeat TTL 3 s
        restarted = time.monotonic()
        sc.mgr.start()
        carried = False
        while not carried and time.monotonic() - restarted < RESTART_BOUND:
            carried = sc.offer(200, 2000)["received"] == 200
        back_in = time.monotonic() - restarted
        assert carried, "no traffic through the chain %.0f s after the restart" % RESTART_BOUND
        assert [c["name"] for c in sc.mgr.call("chain_list")["chains"]] == ["web"]
        assert len(running_of(sc.mgr, "fw")) == 1
        assert wait_until(lambda: sc.mgr.host in global_view.view(r)["hosts"], 10)
        got = sc.offer(2000, 2000)
        assert (got["received"], got["dups"]) == (2000, 0)
        reliability["manager_restarted"] = {"survived": True, "traffic_back_after_s": round(back_in, 1)}
