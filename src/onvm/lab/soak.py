"""A soak run on this machine: traffic through a chain (in -> forward ->
out) while a second instance of the NF is started, drained and stopped over
and over (as the scaler does) and now and then the first one is killed -9
(Docker's restart policy brings it back).  bench/soak.py runs it for 10
minutes and reports; tests/test_soak.py for 30 s and asserts on it."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import docker

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc

from . import traffic
from .hugepages import ensure_free
from .manager import ManagerProcess
from .netns import lab_ports
from .single_host import VERSION, wait_until

FLOWS = "1000-60000"
RATE = 4000.0  # frames a second offered
CHUNK = 12_000  # frames a cycle (3 s)
RSS_SLACK_KB = 64  # allocator noise; a leak a cycle would pass it within minutes


def rss_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        return int(next(x for x in f if x.startswith("VmRSS:")).split()[1])


def soak(seconds: float, tag: str, kill_every: int = 5) -> dict[str, Any]:
    client = docker.from_env()
    ensure_free(160)
    host = "sk" + tag
    conf = nc.ServiceConf(image="onvm/forward:%s" % VERSION, shared_core=True)
    with lab_ports(tag, 2) as ports:
        mgr = ManagerProcess(host, [ports[0].vdev(0), ports[1].vdev(1)], core=0).start()
        rx = traffic.Receiver(ports[1])
        try:
            nc.start(client, nc.spec_for(host, "fw", conf, 0))
            mgr.call("chain_set", name="c", services=["fw"], egress="port1", match={"in_port": "port0"})
            # one cycle of warm-up: every table and cache has seen traffic
            seq = sent = cycles = kills = 0
            traffic.send(ports[0], 2000, dports=FLOWS, rate=RATE, first=seq, flow_len=10)
            seq, sent = 2000, 2000
            assert wait_until(lambda: rx.counts()["received"] == sent, 10)
            pool0 = mgr.call("status")["pool"]
            rss0 = rss_kb(mgr.pid)
            rss_by_cycle: list[int] = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                sender = traffic.send(
                    ports[0], CHUNK, dports=FLOWS, rate=RATE, first=seq, flow_len=10, wait=False
                )
                extra = nc.start(client, nc.spec_for(host, "fw", conf, 1))
                time.sleep(1.0)
                if kill_every and cycles % kill_every == kill_every - 1:
                    # a crash: Docker brings it back, the manager reclaims
                    kills += 1
                    c = client.containers.get(nc.instance_name(host, "fw", 0))
                    os.kill(int(c.attrs["State"]["Pid"]), signal.SIGKILL)
                nc.drain(host, int(extra["instance"]), 0.5, 10)
                nc.stop(client, extra["container"], timeout=2)
                if sender.wait(CHUNK / RATE + 60) != 0:
                    raise RuntimeError("sender failed")
                seq += CHUNK
                sent += CHUNK
                cycles += 1
                rss_by_cycle.append(rss_kb(mgr.pid))
                wait_until(lambda: any(n["service"] == "fw" for n in mgr.call("nf_list")["nfs"]), 20)
            rx.wait_for(sent, timeout=10)
            received = rx.counts()["received"]
            # nothing in flight any more: every mbuf back, memory as it was
            wait_until(lambda: mgr.call("status")["pool"]["avail"] == pool0["avail"], 20)
            pool1 = mgr.call("status")["pool"]
            rss1 = rss_kb(mgr.pid)
            status = mgr.call("status")
            audit = mgr.call("pool_audit")
            audit.pop("ok", None)
            return {
                "seconds": seconds,
                "cycles": cycles,
                "nf_starts_and_stops": cycles,
                "nf_kills": kills,
                "sent": sent,
                "received": received,
                "lost": sent - received,
                "reclaimed_by_manager": status["reclaimed"],
                # while instance 0 is down and no second one runs: no instance to steer to
                "unsteerable": sum(p["steer_drop"] for p in status["ports"]),
                "port_tx_drop": sum(p["tx_drop"] for p in status["ports"]),
                "pool_size": pool0["size"],
                "pool_free_start": pool0["avail"],
                "pool_free_end": pool1["avail"],
                "manager_rss_kb_start": rss0,
                "manager_rss_kb_end": rss1,
                # the first cycles touch memory for the first time (instance
                # slots, flow table pages); a leak keeps growing after them
                "manager_rss_kb_half_way": rss_by_cycle[len(rss_by_cycle) // 2] if rss_by_cycle else rss0,
                "manager_rss_kb_by_cycle": rss_by_cycle,
                "pool_audit_end": audit,
            }
        finally:
            rx.stop()
            nc.remove_host(client, host)
            mgr.stop()


def checks_of(res: dict[str, Any]) -> dict[str, bool]:
    return {
        "pool free count at the end == at the start": res["pool_free_end"] == res["pool_free_start"],
        "manager RSS not grown over the second half (within %d KiB)" % RSS_SLACK_KB: res["manager_rss_kb_end"]
        <= res["manager_rss_kb_half_way"] + RSS_SLACK_KB,
    }
