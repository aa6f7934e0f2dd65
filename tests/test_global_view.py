"""The global view in Redis, kept by onvm-scaler from the stats area: a host
with a manager appears with its instances and their rates; a host that stops
heartbeating drops out within the 3 s TTL; the agent rides out a Redis restart."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from ansible_collections.onvm.nfv.plugins.module_utils import global_view, scale_queue
from onvm.lab.manager import REPO, ManagerProcess, binary
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import wait_until
from onvm.scaler import agent as agent_mod


def agent(host: str, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [os.path.join(REPO, ".venv/bin/onvm-scaler"), "--host", host, "--redis", url, "--interval", "0.2"],
        stderr=subprocess.DEVNULL,
    )


def test_rates_between_snapshots() -> None:
    nf = {
        "instance": 3,
        "service": "fw",
        "state": "running",
        "pid": 9,
        "rx": 100,
        "tx": 90,
        "rx_drop": 0,
        "dropped": 10,
        "busy_cycles": 300,
        "idle_cycles": 700,
        "rx_ring_count": 5,
        "flows": 2,
        "load_pct": 30,
    }
    later = dict(nf, rx=1100, tx=990, dropped=110, busy_cycles=1300, idle_cycles=1700)
    (r,) = global_view.rates({"nfs": [nf]}, {"nfs": [later]}, 2.0)
    assert (r["rx_pps"], r["tx_pps"], r["drop_pps"], r["load"]) == (500.0, 450.0, 50.0, 0.5)
    (first,) = global_view.rates(None, {"nfs": [later]}, 2.0)
    assert first["rx_pps"] == 0.0 and first["load"] == 0.3
    restarted = dict(later, pid=10)
    assert global_view.rates({"nfs": [nf]}, {"nfs": [restarted]}, 2.0)[0]["rx_pps"] == 0.0


@pytest.mark.dataplane
def test_view_follows_the_host_and_drops_it_within_the_ttl(
    managers: Callable[..., ManagerProcess], redis_server: RedisServer
) -> None:
    mgr = managers()
    nf = subprocess.Popen(
        [binary("bounce"), "--host", mgr.host, "--service", "web1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis.from_url(redis_server.url)
    a = agent(mgr.host, redis_server.url)
    try:

        def listed() -> bool:
            v = global_view.view(client)
            return mgr.host in v["hosts"] and [i["host"] for i in v["services"].get("web1", [])] == [mgr.host]

        assert wait_until(listed, 20)
        info = global_view.view(client)["hosts"][mgr.host]
        assert info["cpus"] == os.cpu_count() and 0 <= info["free_cores"] <= info["cpus"]

        # Redis restarts: the agent reconnects and the host is back in the new, empty view.
        redis_server.stop()
        time.sleep(1)
        redis_server.start()
        assert wait_until(listed, 20)

        a.send_signal(signal.SIGKILL)
        a.wait()
        stopped = time.monotonic()
        assert wait_until(lambda: mgr.host not in global_view.alive_hosts(client), 10)
        gone_after = time.monotonic() - stopped
        assert "web1" not in global_view.view(client)["services"]
    finally:
        for p in (a, nf):
            if p.poll() is None:
                p.terminate()
                p.wait(10)
    assert gone_after <= global_view.HEARTBEAT_TTL_MS / 1000 + 0.5, gone_after
    print("host dropped out %.2f s after its last agent stopped" % gone_after, file=sys.stderr)


def test_a_host_that_stops_cleanly_leaves_at_once_and_is_not_lost(
    managers: Callable[..., ManagerProcess], redis_server: RedisServer
) -> None:
    """SIGTERM (undeploy): the agent takes its host out of the view at once
    and marks it left, so the others do not start its instances elsewhere;
    the host's next heartbeat clears the mark."""
    mgr = managers()
    client = redis.Redis.from_url(redis_server.url)
    agents = [agent(mgr.host, redis_server.url)]
    try:
        assert wait_until(lambda: mgr.host in global_view.view(client)["hosts"], 20)
        agents[0].terminate()
        assert agents[0].wait(10) == 0
        # no waiting for the TTL: gone as soon as the agent has exited
        assert mgr.host not in global_view.view(client)["hosts"]
        assert global_view.has_left(client, mgr.host)
        agents.append(agent(mgr.host, redis_server.url))
        assert wait_until(lambda: mgr.host in global_view.view(client)["hosts"], 20)
        assert not global_view.has_left(client, mgr.host)
    finally:
        for p in agents:
            if p.poll() is None:
                p.terminate()
                p.wait(10)


def test_the_agent_authenticates_with_its_password_file(
    managers: Callable[..., ManagerProcess], tag: str, tmp_path: Any
) -> None:
    """A Redis with a password (as onvm.nfv.onvm_state starts it): without the
    password nothing is read; the agent, given its file, heartbeats into it."""
    server = RedisServer(20000 + (int(tag) + 7) % 20000, password="pw-" + tag).start()
    mgr = managers()
    secret = tmp_path / "redis.pass"
    secret.write_text("pw-%s\n" % tag)
    secret.chmod(0o600)
    a = subprocess.Popen(
        [
            os.path.join(REPO, ".venv/bin/onvm-scaler"),
            *("--host", mgr.host, "--redis", server.url, "--interval", "0.2"),
            *("--redis-password-file", str(secret)),
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        with pytest.raises(redis.AuthenticationError):
            global_view.view(redis.Redis.from_url(server.url))
        client = global_view.connect(server.url, str(secret))
        assert wait_until(lambda: mgr.host in global_view.view(client)["hosts"], 20)
    finally:
        a.terminate()
        a.wait(10)
        server.stop()


@dataclasses.dataclass
class TwoHosts:
    hosts: list[str]
    agents: dict[str, subprocess.Popen[bytes]]
    client: Any

    def both_listed(self) -> bool:
        v = global_view.view(self.client)
        return all(h in v["hosts"] and v["services"].get("svc-" + h) for h in self.hosts)

    def both_seen(self) -> None:
        """Wait until each agent has read a view with the other in it: a
        tick publishes its heartbeat, then reads the view, so a heartbeat
        newer than the moment both were listed means the next read has
        both (a host an agent never saw is nobody's loss)."""
        listed = time.time() * 1000

        def beat(h: str) -> float:
            return float(global_view.view(self.client)["hosts"].get(h, {}).get("updated_ms", 0.0))

        assert wait_until(lambda: all(beat(h) > listed + 200 for h in self.hosts), 10)

    def below_min(self) -> list[dict[str, str]]:
        return [e for e in scale_queue.events(self.client) if e["kind"] == "below-min"]

    def kill(self, host: str) -> None:
        self.agents[host].kill()
        self.agents[host].wait()


@contextlib.contextmanager
def two_hosts(tag: str, redis_server: RedisServer, tmp_path: Any) -> Iterator[TwoHosts]:
    """Two hosts, each with a manager, an agent and one service the other
    does not declare (so a loss can only be reported, not repaired: event
    below-min), both listed in the view."""
    hosts = ["la" + tag, "lb" + tag]
    mgrs = [ManagerProcess(h, core=i).start() for i, h in enumerate(hosts)]
    nfs = [
        subprocess.Popen(
            [binary("bounce"), "--host", h, "--service", "svc-" + h],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for h in hosts
    ]
    agents: dict[str, subprocess.Popen[bytes]] = {}
    logs: list[Any] = []
    client = redis.Redis.from_url(redis_server.url)
    try:
        for h in hosts:
            conf = tmp_path / ("%s.json" % h)
            conf.write_text(
                json.dumps({"host": h, "services": {}, "cluster_min": {"svc-" + x: 1 for x in hosts}})
            )
            logs.append(open(tmp_path / ("%s.log" % h), "wb"))  # the agent's log, for a failure
            agents[h] = subprocess.Popen(
                [
                    os.path.join(REPO, ".venv/bin/onvm-scaler"),
                    *("--host", h, "--redis", redis_server.url, "--interval", "0.1", "--config", str(conf)),
                ],
                stderr=logs[-1],
            )
        two = TwoHosts(hosts, agents, client)
        assert wait_until(two.both_listed, 20)
        two.both_seen()
        yield two
    finally:
        for p in [*agents.values(), *nfs]:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        for m in mgrs:
            m.stop()
        for f in logs:
            f.close()


def exists_calls(client: Any) -> int:
    return int(client.info("commandstats").get("cmdstat_exists", {}).get("calls", 0))


def test_a_host_whose_agent_dies_is_lost_but_a_redis_restart_loses_nobody(
    tag: str, hugepages: int, built: None, redis_server: RedisServer, tmp_path: Any
) -> None:
    """Redis restarted: both agents come back at different times and neither
    takes the other for lost.  Then one agent killed -9: the other reports
    it, and asks Redis whether it left cleanly once, not on every tick."""
    with two_hosts(tag, redis_server, tmp_path) as two:
        a, b = two.hosts
        redis_server.stop()
        time.sleep(1)  # both agents back off: they reconnect at different times
        redis_server.start()
        assert wait_until(two.both_listed, 20)
        two.both_seen()
        assert two.below_min() == []

        two.kill(b)
        assert wait_until(lambda: two.below_min() != [], 10)
        (ev,) = two.below_min()
        assert (ev["service"], ev["lost"], ev["origin"]) == ("svc-" + b, b, a)
        # whether it left cleanly is asked once per loss (EXISTS is only
        # global_view.has_left), not on each of the next 10+ ticks
        asked = exists_calls(two.client)

        def beat() -> float:
            return float(global_view.view(two.client)["hosts"].get(a, {}).get("updated_ms", 0.0))

        first = beat()
        assert wait_until(lambda: beat() >= first + 1000, 10)
        assert exists_calls(two.client) == asked


def test_a_host_that_dies_while_redis_is_down_is_lost_once_redis_is_back(
    tag: str,
    hugepages: int,
    built: None,
    redis_server: RedisServer,
    tmp_path: Any,
    reliability: dict[str, Any],
) -> None:
    """Redis stopped, one agent killed -9 meanwhile, Redis started empty:
    the other agent waits out its grace period (every live agent is back by
    then) and reports the dead one, exactly once."""
    with two_hosts(tag, redis_server, tmp_path) as two:
        a, b = two.hosts
        redis_server.stop()
        two.kill(b)
        time.sleep(1)  # a's agent fails a tick or more: an outage, not a blip
        redis_server.start()
        back = time.monotonic()
        assert wait_until(lambda: a in global_view.view(two.client)["hosts"], 20)
        assert wait_until(lambda: two.below_min() != [], 20)
        reported = time.monotonic() - back
        (ev,) = two.below_min()
        assert (ev["service"], ev["lost"], ev["origin"]) == ("svc-" + b, b, a)
        reliability["host_lost_during_redis_outage"] = {
            "reported_s_after_redis_back": round(reported, 2),
            "grace_s": agent_mod.LOSS_GRACE,
        }
