"""The lab's destroy (molecule lab) on a machine whose processes were all
ended while the lab was deployed: namespaces, key, exited NF containers, lab
ports, supervision files and fabric sockets are left, no sshd answers.  The
destroy undeploys no host it cannot reach, sends nothing over the network and
removes all of it (CI met exactly this machine and failed on it).

The lab here has names of its own (hosts, bridge, addresses, directory), so a
lab brought up by the user is not touched."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from onvm.lab.deployment import ansible, inventory_yaml
from onvm.lab.single_host import VERSION


def playbook(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return ansible("ansible-playbook", path, *args, timeout=300)


def left_of(hosts: list[str], bridge: str, lab_dir: str, client: Any) -> list[str]:
    paths = [Path("/sys/class/net", bridge), Path(lab_dir)]
    for h in hosts:
        paths += [Path("/run/netns/onvm-%s" % h), Path("/sys/class/net/m-%s" % h)]
        paths += Path("/run/netns").glob("onvm-%s-*" % h)
        paths += Path("/var/run/onvm").glob("*%s*" % h)
    found = [str(p) for p in paths if p.exists()]
    return found + [
        c.name
        for c in client.containers.list(all=True)
        if c.name.startswith(tuple("onvm-%s-" % h for h in hosts))
    ]


@pytest.fixture
def lab(tag: str, tmp_path: Path, docker_client: Any) -> Iterator[dict[str, Any]]:
    hosts = {"y%sa" % tag: "198.19.241.11", "y%sb" % tag: "198.19.241.12"}
    layout = {
        "onvm_lab_dir": "/var/lib/onvm-lab-%s" % tag,  # sshd wants no world-writable dir above its keys
        "onvm_lab_bridge": "b%s" % tag,
        "onvm_lab_control": "198.19.241.1",
        "onvm_lab_hosts": hosts,
        # the global view's Redis that undeploy stops: not the one of inventory/local
        "onvm_state_dir": str(tmp_path / "redis"),
    }
    extra = tmp_path / "layout.yml"
    extra.write_text(yaml.safe_dump(layout))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        inventory_yaml(
            {
                h: {
                    "ansible_host": addr,
                    "ansible_user": "root",
                    "ansible_ssh_private_key_file": "%s/id_ed25519" % layout["onvm_lab_dir"],
                }
                for h, addr in hosts.items()
            }
        )
    )
    up = playbook("playbooks/lab_up.yml", "-e", "@%s" % extra)
    try:
        assert up.returncode == 0, up.stdout[-3000:]
        yield {"hosts": list(hosts), "extra": str(extra), "inventory": str(inventory), **layout}
    finally:
        playbook("playbooks/lab_down.yml", "-e", "@%s" % extra)
        for c in docker_client.containers.list(all=True):
            if c.name.startswith(tuple("onvm-%s-" % h for h in hosts)):
                c.remove(force=True)


@pytest.mark.docker
def test_destroy_clears_a_lab_whose_processes_were_ended(lab: dict[str, Any], docker_client: Any) -> None:
    a, b = lab["hosts"]
    # what a deployed lab keeps when every process of the session is ended
    Path("/var/run/onvm").mkdir(exist_ok=True)
    for h in (a, b):
        pidfile = Path(lab["onvm_lab_dir"], "%s_sshd.pid" % h)
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        subprocess.run(["ip", "netns", "add", "onvm-%s-n0" % h], check=True)
        docker_client.containers.create("onvm/pause:%s" % VERSION, name="onvm-%s-forward-0" % h)
        for f in ("onvm-mgr-%s.pid" % h, "onvm-scaler-%s.json" % h):
            Path("/var/run/onvm", f).write_text("999999\n")
    Path("/var/run/onvm/fabric-%s-%s.sock" % (a, b)).touch()
    assert len(left_of([a, b], lab["onvm_lab_bridge"], lab["onvm_lab_dir"], docker_client)) > 10

    out = playbook("molecule/lab/destroy.yml", "-i", lab["inventory"], "-e", "@%s" % lab["extra"])

    assert out.returncode == 0, out.stdout[-4000:]
    assert "UNREACHABLE" not in out.stdout
    assert left_of([a, b], lab["onvm_lab_bridge"], lab["onvm_lab_dir"], docker_client) == []
    # run again on nothing: nothing to do
    again = playbook("molecule/lab/destroy.yml", "-i", lab["inventory"], "-e", "@%s" % lab["extra"])
    assert again.returncode == 0, again.stdout[-4000:]
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]
