"""The global view replicated: onvm.nfv.onvm_state run by ansible-playbook
on three hosts of the group ``onvm_state`` (this machine, local connection,
each on a loopback address of its own) deploys a primary, two replicas and
three sentinels; a re-run changes nothing.  Then, under traffic and with a
scale request just queued, the primary is killed -9: a replica takes over
within the stated bound, the agents find it by themselves, no host is taken
for lost, the request runs exactly once, the data plane forwards all along,
and a re-run of the role brings the dead server back as a replica, changing
nothing else."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import redis
import yaml

from ansible_collections.onvm.nfv.plugins.module_utils import global_view
from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue as q
from onvm.lab import scaler_proc, traffic
from onvm.lab.bursts import deploy_policy
from onvm.lab.deployment import ansible
from onvm.lab.manager import REPO, ManagerProcess
from onvm.lab.promscrape import free_port
from onvm.lab.single_host import VERSION, firewall_forward, wait_until

PLAY = """
- name: The global view
  hosts: onvm_state
  gather_facts: false
  roles:
    - role: onvm.nfv.onvm_state
"""
FAILOVER_BOUND_S = 10.0  # down-after 1 s, then the sentinels' vote and the promotion
HOSTS = ("state1", "state2", "state3")


@dataclass
class Trio:
    inventory: Path
    addresses: dict[str, str]  # host -> its loopback address
    port: int
    sentinel_port: int
    dirs: dict[str, Path]
    password: str
    url: str  # the agents' redis+sentinel:// URL
    password_file: Path

    def run(self, *extra: str) -> dict[str, str]:
        """ansible-playbook with the play; each state host's recap line."""
        proc = ansible(
            "ansible-playbook", "-i", str(self.inventory), str(self.inventory.parent / "play.yml"), *extra
        )
        lines = {
            ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.split()[:1] and ln.split()[0] in HOSTS
        }
        assert proc.returncode == 0 and len(lines) == 3, proc.stdout[-3000:] + proc.stderr[-2000:]
        return lines

    def server(self, host: str, sentinel: bool = False) -> Any:
        return redis.Redis(
            host=self.addresses[host],
            port=self.sentinel_port if sentinel else self.port,
            password=self.password,
            socket_timeout=3,
        )

    def primary(self) -> str | None:
        """The host the sentinels (a majority of them) name as the primary."""
        named: dict[str, int] = {}
        for h in HOSTS:
            try:
                addr = self.server(h, sentinel=True).execute_command(
                    "SENTINEL", "get-master-addr-by-name", "onvm"
                )
            except redis.RedisError:
                continue
            ip = addr[0].decode() if addr else ""
            who = next((x for x, a in self.addresses.items() if a == ip), "")
            named[who] = named.get(who, 0) + 1
        best = max(named.items(), key=lambda kv: kv[1], default=("", 0))
        return best[0] if best[1] >= 2 else None

    def pid(self, host: str, what: str = "redis") -> int:
        return int((self.dirs[host] / ("%s.pid" % what)).read_text().strip())


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Trio]:
    port, sentinel_port = free_port(), free_port()
    net = "127.%d.%d." % ((port >> 8) & 255, port & 255)
    addresses = {h: net + str(i + 1) for i, h in enumerate(HOSTS)}
    dirs = {h: tmp_path / h for h in HOSTS}
    password = "replicated-%d" % port
    hosts = {
        h: {
            "ansible_connection": "local",
            "ansible_python_interpreter": "/usr/bin/python3",
            "onvm_state_bind": [addresses[h]],
            "onvm_state_port": port,
            "onvm_state_sentinel_port": sentinel_port,
            "onvm_state_dir": str(dirs[h]),
        }
        for h in HOSTS
    }
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            {"all": {"children": {"onvm_state": {"hosts": hosts, "vars": {"onvm_state_password": password}}}}}
        )
    )
    (tmp_path / "play.yml").write_text(PLAY)
    secret = tmp_path / "redis.pass"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    url = "redis+sentinel://%s/onvm/0" % ",".join("%s:%d" % (addresses[h], sentinel_port) for h in HOSTS)
    try:
        yield Trio(inventory, addresses, port, sentinel_port, dirs, password, url, secret)
    finally:
        for d in dirs.values():
            for what in ("sentinel", "redis"):
                pid = d / ("%s.pid" % what)
                if pid.exists():
                    subprocess.run(["kill", pid.read_text().strip()], capture_output=True)
        for d in dirs.values():
            for what in ("sentinel", "redis"):
                pid = d / ("%s.pid" % what)
                if pid.exists():
                    n = pid.read_text().strip()
                    for _ in range(50):  # gone before the next test looks at the machine
                        if not os.path.exists("/proc/%s" % n):
                            break
                        time.sleep(0.1)


def test_the_role_deploys_a_primary_two_replicas_and_three_sentinels(trio: Trio) -> None:
    first = trio.run()
    assert all("failed=0" in line for line in first.values()), first
    assert trio.primary() == "state1"
    info = trio.server("state1").info("replication")
    assert info["role"] == "master" and info["connected_slaves"] == 2, info
    for h in ("state2", "state3"):
        assert trio.server(h).info("replication")["role"] == "slave"
    # the scaler module's check, and the agents' client, find it through the sentinels
    assert global_view.ping(trio.url, str(trio.password_file)) is None
    assert global_view.ping(trio.url, None) is not None  # no password: refused, in words
    client = global_view.connect(trio.url, str(trio.password_file), socket_timeout=3)
    client.set("probe", "1")
    assert wait_until(lambda: trio.server("state3").get("probe") == b"1", 10)
    global_view.publish(client, "somehost", 4, [], int(time.time() * 1000) + 60_000, None, {})
    # the CLI too, as an operator types it
    cli = subprocess.run(
        [
            *(os.path.join(REPO, ".venv/bin/onvm"), "cluster", "--redis", trio.url),
            *("--redis-password-file", str(trio.password_file)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 0 and "somehost" in cli.stdout, cli.stdout + cli.stderr
    # a re-run changes nothing
    again = trio.run()
    assert all("changed=0" in line and "failed=0" in line for line in again.values()), again


@pytest.mark.dataplane
def test_the_primary_killed_under_traffic_with_a_request_queued(
    trio: Trio,
    tag: str,
    tmp_path: Path,
    hugepages: int,
    built: None,
) -> None:
    trio.run()
    client = global_view.connect(
        trio.url, str(trio.password_file), socket_timeout=3, socket_connect_timeout=2
    )
    docker_client = docker.from_env()
    where_b = tmp_path / "b"
    where_b.mkdir()
    with firewall_forward(tag, docker_client) as chain, other_host("u" + tag) as b:
        a = chain.mgr.host
        conf_a = {
            "services": {
                "firewall": {"image": "onvm/firewall:%s" % VERSION, "min": 1, "max": 1},
                "forward": {"image": "onvm/forward:%s" % VERSION, "min": 1, "max": 2},
            },
            "policy": deploy_policy(),
        }
        agents = [
            scaler_proc.start(a, trio.url, conf_a, tmp_path, password_file=str(trio.password_file)),
            scaler_proc.start(b, trio.url, {"services": {}}, where_b, password_file=str(trio.password_file)),
        ]
        receiver = traffic.Receiver(chain.ports[1])
        sender = None
        try:
            assert wait_until(lambda: {a, b} <= set(global_view.view(client)["hosts"]), 30)
            sender = traffic.send_until_stopped(chain.ports[0], "3000-3099", 2000.0)
            assert wait_until(lambda: receiver.counts().get("received", 0) > 1000, 30)
            # queued as a scaler queues it: on a replica too before anyone acts on it
            req = q.new_request("forward", a, "test")
            q.enqueue(client, req)
            assert q.settle(client) >= 1
            killed = time.monotonic()
            os.kill(trio.pid("state1"), signal.SIGKILL)  # the primary, right after the request was queued
            assert wait_until(lambda: trio.primary() not in (None, "state1"), FAILOVER_BOUND_S + 5)
            took = time.monotonic() - killed
            assert took <= FAILOVER_BOUND_S, took
            # the agents are back on the new primary, and both hosts are in its view
            assert wait_until(lambda: {a, b} <= set(_view(client)["hosts"]), 30)
            # the request ran, once
            assert wait_until(lambda: (q.state(client, req.id) or {}).get("state") == "done", 30), (
                str(q.state(client, req.id)) + "\n" + (tmp_path / "scaler.log").read_text()
            )
            labelled = [
                c
                for c in nc.find(docker_client, a, "forward")
                if c.labels.get("org.onvm.request") == req.id and c.status == "running"
            ]
            assert len(labelled) == 1
            time.sleep(2 * global_view.HEARTBEAT_TTL_MS / 1000)  # what a lost host would need to be seen
            sent = traffic.stop_sending(sender)
            sender = None
            got = receiver.wait_for(sent, 20)
        finally:
            if sender is not None:
                traffic.stop_sending(sender)
            receiver.stop()
            for p in agents:
                scaler_proc.stop(p)
        logs = (tmp_path / "scaler.log").read_text() + (where_b / "scaler.log").read_text()
        events = [e["kind"] for e in q.events(client, 1000)]
    # no host was taken for lost because the store moved
    assert " is lost " not in logs, logs[-3000:]
    assert "below-min" not in events and "replace-requested" not in events, events
    assert events.count("scale-out") == 1, events
    # the data plane forwarded all along (it never needed Redis)
    assert got["received"] == sent, (got, sent)
    print("failover took %.2f s; %d frames sent, all received" % (took, sent))

    # the dead server: a re-run of the role brings it back as the new primary's replica
    recap = trio.run()
    assert "changed=1" in recap["state1"] and all("changed=0" in recap[h] for h in ("state2", "state3")), (
        recap
    )
    assert wait_until(lambda: trio.server("state1").info("replication")["role"] == "slave", 20)
    assert all("changed=0" in line for line in trio.run().values())


@contextlib.contextmanager
def other_host(host: str) -> Iterator[str]:
    """A second host: a manager of its own (another name than the chain's)."""
    mgr = ManagerProcess(host).start()
    try:
        yield mgr.host
    finally:
        mgr.stop()


def _view(client: Any) -> dict[str, Any]:
    try:
        v: dict[str, Any] = global_view.view(client)
        return v
    except redis.RedisError:
        return {"hosts": {}, "services": {}}
