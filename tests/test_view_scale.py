"""The global view at scale, on a real redis-server: an agent reads what its
decisions need, never the whole cluster.  Its reads per round are the same
with 10 other hosts as with 400; services_view() has every host a decision
about a service needs (those that run it and those that only declare it)
and no other; a host that leaves or goes silent drops out of it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import global_view
from ansible_collections.onvm.nfv.plugins.module_utils.nf_container import ServiceConf
from onvm.lab.manager import ManagerProcess, binary
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import wait_until
from onvm.scaler.agent import Agent
from onvm.scaler.config import ScalerConfig, Service

# what an agent's reads are (its writes are its own heartbeat: as long as its host)
READS = (
    "scan",
    "keys",
    "get",
    "mget",
    "exists",
    "hget",
    "hmget",
    "hgetall",
    "zrange",
    "zrangebyscore",
    "zmscore",
    "xread",
    "xrange",
    "xrevrange",
)


def inst(service: str, n: int, load: float = 0.2) -> dict[str, Any]:
    return {"instance": n, "service": service, "state": "running", "load": load, "ring_drop_pps": 0.0}


def others(client: Any, first: int, last: int, now_ms: int) -> None:
    """Hosts o<first>..o<last-1>, each running and declaring "bulk"; the
    first three also run and declare "web" (the service the agent watches)."""
    for n in range(first, last):
        web = n < 3
        svcs = [inst("bulk", 1)] + ([inst("web", 2)] if web else [])
        declared = {"bulk": (1, 2), **({"web": (0, 2)} if web else {})}
        global_view.publish(client, "o%d" % n, 8, svcs, now_ms, None, declared)


def reads(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get("cmdstat_" + c, {}).get("calls", 0)) for c in READS)


@pytest.mark.dataplane
def test_an_agents_reads_per_round_do_not_grow_with_the_cluster(
    managers: Callable[..., ManagerProcess], redis_server: RedisServer
) -> None:
    """An agent with a real manager whose host runs more web instances than
    its minimum (so it watches web for a surplus every round), among 10 then
    400 other hosts (3 of them run web): the same number of reads per round."""
    mgr = managers()
    nf = subprocess.Popen(
        [binary("bounce"), "--host", mgr.host, "--service", "web"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis_server.client()
    conf = ScalerConfig(mgr.host, {"web": Service(ServiceConf(image="onvm/bounce:latest"), 0, 2)})
    a = Agent(mgr.host, redis_server.url, 0.1, None, conf)
    try:
        future = int(time.time() * 1000) + 120_000  # live for the whole test
        others(client, 0, 10, future)

        def nf_up() -> bool:
            snap = a.snapshot()
            return snap is not None and bool(snap["nfs"])

        assert wait_until(nf_up, 20)

        def per_round() -> float:
            a.tick()  # joined, membership read, the NF seen
            before = reads(client)
            for _ in range(20):
                a.view_at = a.reclaimed_at = -1e9  # every round a periodic one: loss, surplus, stuck requests
                a.tick()
            return (reads(client) - before) / 20

        def watching() -> bool:
            a.tick()
            return "web" in a.above_min()

        assert wait_until(watching, 10)
        small = per_round()
        others(client, 10, 400, future)
        large = per_round()
        assert small == large, (small, large)
        # membership since the last round, the silent hosts and the registry's
        # forgotten (one round trip), stuck requests and web's part of the
        # view: its instances, its declarations, the registry's scores of the
        # 4 hosts involved and their records and instances (2 reads each)
        assert small == 3 + 1 + 3 + 2 * 4, small
        view = global_view.services_view(client, {"web"}, int(time.time() * 1000))
        assert sorted(view["hosts"]) == sorted([mgr.host, "o0", "o1", "o2"])
    finally:
        nf.terminate()
        nf.wait(10)


def test_services_view_has_the_hosts_that_run_or_declare_the_service_and_no_other(
    redis_server: RedisServer,
) -> None:
    client = redis_server.client()
    now = int(time.time() * 1000)
    global_view.publish(client, "runs", 8, [inst("fw", 1, 0.5), inst("nat", 2)], now, None, {"fw": (1, 3)})
    global_view.publish(client, "declares", 4, [], now, None, {"fw": (0, 2)})
    global_view.publish(client, "other", 16, [inst("nat", 1)], now, None, {"nat": (1, 1)})
    global_view.publish(client, "silent", 8, [inst("fw", 1)], now - 10_000, None, {"fw": (1, 1)})
    v = global_view.services_view(client, {"fw"}, now)
    assert sorted(v["hosts"]) == ["declares", "runs"]
    assert v["hosts"]["runs"]["free_cores"] == 7.3
    assert [(i["host"], i["instance"]) for i in v["services"]["fw"]] == [("runs", 1)]
    assert "nat" not in v["services"]  # not asked for: runs' nat is not read into it
    assert v["declared"] == {"fw": {"runs": (1, 3), "declares": (0, 2)}}
    # a fabric peer's instances come with it, whatever their service
    peered = global_view.services_view(client, set(), now, ["other"])
    assert [i["host"] for i in peered["services"]["nat"]] == ["other"]
    # a clean leave withdraws the host's declarations at once
    global_view.leave(client, "declares", now, ["fw"])
    assert global_view.services_view(client, {"fw"}, now)["declared"] == {"fw": {"runs": (1, 3)}}
    # the whole view (the CLI's) has every live host
    assert sorted(global_view.view(client)["hosts"]) == ["other", "runs"]
    # an instance stopped since the last heartbeat is gone from the next one's view
    global_view.publish(client, "runs", 8, [inst("fw", 1, 0.5)], now + 100)
    assert [i["instance"] for i in global_view.view(client)["services"]["fw"]] == [1]
    assert "nat" not in global_view.view(client)["services"] or all(
        i["host"] != "runs" for i in global_view.view(client)["services"]["nat"]
    )


def test_membership_says_who_joined_changed_and_left(redis_server: RedisServer) -> None:
    client = redis_server.client()
    now = int(time.time() * 1000)
    cursor = global_view.membership_tail(client)
    assert cursor == "0"
    global_view.publish(client, "h1", 8, [inst("fw", 1)], now, None, {"fw": (1, 1)})
    global_view.publish(client, "h1", 8, [inst("fw", 1)], now + 100)  # a heartbeat: no entry
    global_view.publish(client, "h2", 8, [], now, None, {})
    global_view.leave(client, "h2", now)
    cursor, changes, silent = global_view.check(client, cursor, now)
    assert changes == [("h1", {"fw"}), ("h2", set()), ("h2", None)]
    assert silent == set()
    assert global_view.check(client, cursor, now) == (cursor, [], set())
    # a heartbeat the registry does not know (a Redis that lost it) says so
    client.zrem("onvm:hosts", "h1")
    assert global_view.publish(client, "h1", 8, [inst("fw", 1)], now + 200) is True
    assert global_view.publish(client, "h1", 8, [inst("fw", 1)], now + 300) is False
    # silent hosts: h1's last heartbeat (now + 300) is older than the TTL after now + 3.3 s
    assert global_view.check(client, cursor, now + 3_400)[2] == {"h1"}
    assert global_view.check(client, cursor, now + 3_000)[2] == set()
    # h2 left: the registry does not have it, and a suspect it does not have is silent
    assert global_view.check(client, cursor, now, ["h2", "h1"])[2] == {"h2"}
    assert global_view.members_now(client, now + 300) == {"h1": {"fw"}}
    # ten minutes of silence: out of the registry, and of what a starting agent reads
    assert global_view.check(client, cursor, now + 300 + global_view.FORGET_MS)[2] == {"h1"}
    assert client.zscore("onvm:hosts", "h1") is None and client.hget("onvm:services", "h1") is None
