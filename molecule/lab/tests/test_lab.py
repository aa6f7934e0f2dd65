"""Verify the lab deploy over the same SSH the deploy used: each host runs its
own manager inside its own network namespace, its NFs as containers named for
it, and its chain carries traffic."""

from __future__ import annotations

import json
from typing import Any


def hostname(host: Any) -> str:
    return str(host.backend.get_hostname())


def mgr_pid(host: Any, name: str) -> str:
    """The manager of ``name`` (anchored: not the shell running pgrep)."""
    pids = host.check_output("pgrep -f '^[^ ]*/onvm-mgr --host %s '" % name).split()
    assert len(pids) == 1, pids
    return str(pids[0])


def test_each_host_runs_its_manager_in_its_namespace(host: Any) -> None:
    name = hostname(host)
    pid = mgr_pid(host, name)
    assert host.check_output("ip netns identify %s" % pid) == "onvm-%s" % name
    assert host.interface("mgmt0").exists
    sock = host.socket("tcp://%s:22" % host.interface("mgmt0").addresses[0])
    assert sock.is_listening


def test_nf_containers_carry_the_host_name(host: Any) -> None:
    name = hostname(host)
    out = host.check_output("docker ps --filter label=org.onvm.host=%s --format '{{json .Names}}'" % name)
    names = [json.loads(line) for line in out.splitlines()]
    assert names and all(n.startswith("onvm-%s-" % name) for n in names)


def test_the_hosts_chain_carries_traffic(host: Any) -> None:
    name = hostname(host)
    exe = host.check_output("readlink -f /proc/%s/exe" % mgr_pid(host, name))
    repo = exe.rsplit("/build/", 1)[0]
    host.check_output("%s/.venv/bin/onvm send --host %s --count 3000 --rate 20000" % (repo, name))
    status = host.check_output(
        '%s/.venv/bin/python -c "from ansible_collections.onvm.nfv.plugins.module_utils import onvm_ctl;'
        " import json; print(json.dumps(onvm_ctl.call('%s', 'status')))\"" % (repo, name)
    )
    ports = json.loads(status)["ports"]
    assert ports[0]["rx"] >= 3000
    assert ports[1]["tx"] >= 2000  # lab1's firewall passes 2/3 of these ports


def test_global_view_lists_the_three_hosts_and_every_instance() -> None:
    import time

    import redis

    from ansible_collections.onvm.nfv.plugins.module_utils import global_view

    client = redis.Redis.from_url("redis://198.18.0.1:6379/0", socket_timeout=3)
    want = {"firewall": ["lab1"], "forward": ["lab1", "lab3"], "ids": ["lab2"]}
    deadline = time.monotonic() + 10
    while True:
        v = global_view.view(client)
        got = {svc: [i["host"] for i in insts] for svc, insts in v["services"].items()}
        if (sorted(v["hosts"]) == ["lab1", "lab2", "lab3"] and got == want) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(v["hosts"]) == ["lab1", "lab2", "lab3"]
    assert got == want
