"""inventory/rack, the example docs/real-rack.md walks through, is accepted the
way an operator would first try it: ansible-inventory lists its groups with the
vault-encrypted Redis password decrypted, and deploy.yml --check runs through
every play with it, changing nothing.

Its hosts are documentation addresses; the check runs them here with the local
connection (nothing leaves this machine), the PCI ports of the example in a
fake sysfs (the only fake: this machine has no such NICs), and the global
view's address on loopback at a port of this test's own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.onvm.nfv.tests.unit.plugins.module_utils.fakesys import FakeTree
from onvm.lab.deployment import ansible
from onvm.lab.manager import REPO
from onvm.lab.promscrape import free_port

RACK = os.path.join(REPO, "inventory", "rack")
VAULT = os.path.join(RACK, "vault-password.example")
HOSTS = ("rack1", "rack2")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def machine_state(docker_client: Any, port: int) -> dict[str, Any]:
    """What a check of the rack must not change on this machine: the rack hosts' containers,
    managers and agents, its Redis, the hugepage pool, the package, namespaces.  (Only what
    the rack would make: other tests' processes come and go beside this one.)"""
    procs = run("pgrep", "-af", "onvm-(mgr|scaler) --host rack|redis-server .*:%d" % port).stdout.splitlines()
    return {
        "containers": sorted(c.name for c in docker_client.containers.list(all=True) if "-rack" in c.name),
        "procs": sorted(p for p in procs if "pgrep" not in p),
        "hugepages": Path("/proc/sys/vm/nr_hugepages").read_text(),
        "package": run("dpkg-query", "-W", "-f", "${Version}", "onvm-dataplane").stdout,
        "netns": [n for n in run("ip", "netns").stdout.splitlines() if "rack" in n],
    }


@pytest.fixture
def leave_nothing() -> Iterator[None]:
    """The check stages the NFs' files under /etc/onvm/<host>/staged (by design, to ask the
    NF about them): removed afterwards, pass or fail."""
    try:
        yield
    finally:
        for h in HOSTS:
            shutil.rmtree("/etc/onvm/%s" % h, ignore_errors=True)
            shutil.rmtree("/opt/onvm/%s" % h, ignore_errors=True)


def test_ansible_inventory_lists_the_rack_and_decrypts_its_password() -> None:
    proc = ansible("ansible-inventory", "-i", RACK, "--list", "--vault-password-file", VAULT)
    assert proc.returncode == 0, proc.stderr
    inv = json.loads(proc.stdout)
    assert inv["onvm"]["hosts"] == list(HOSTS) and inv["onvm_state"]["hosts"] == ["mgmt1"]
    hv = inv["_meta"]["hostvars"]
    assert hv["rack1"]["onvm_ports"] == ["0000:3b:00.0"] and hv["rack1"]["onvm_lab_ports"] == 0
    assert hv["mgmt1"]["onvm_state_bind"][0] == "192.0.2.10"
    # the password is the vault's, decrypted, the same for every host
    password = hv["mgmt1"]["onvm_state_password"]
    assert password and "ANSIBLE_VAULT" not in str(password)
    # without the vault's password it cannot be read
    proc = ansible("ansible-inventory", "-i", RACK, "--list")
    assert proc.returncode != 0 or "ANSIBLE_VAULT" in proc.stdout or "vault" in proc.stderr.lower()


def test_a_check_mode_deploy_of_the_rack_runs_every_play_and_changes_nothing(
    tmp_path: Path, docker_client: Any, leave_nothing: None
) -> None:
    fake = FakeTree(tmp_path / "fake")
    fake.add_driver("vfio-pci")
    fake.add_device("0000:3b:00.0", driver="ixgbe", iommu_group=40)
    fake.add_device("0000:3b:00.1", driver="ixgbe", iommu_group=41)
    port = free_port()
    extra = {
        "ansible_connection": "local",
        "onvm_host_sysfs_root": str(fake.sys),
        "onvm_state_bind": ["127.0.0.1"],
        "onvm_state_port": port,
        "onvm_state_dir": str(tmp_path / "redis"),
    }
    before = machine_state(docker_client, port)
    proc = ansible(
        "ansible-playbook",
        "deploy.yml",
        "-i",
        RACK,
        "--check",
        "--diff",
        "--vault-password-file",
        VAULT,
        "-e",
        json.dumps(extra),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    recap = {line.split()[0]: line for line in proc.stdout.splitlines() if " : ok=" in line}
    assert set(recap) == {"rack1", "rack2", "mgmt1"}
    assert all("failed=0" in line and "unreachable=0" in line for line in recap.values()), recap
    # it says what it would do: bind the ports, start the managers, the NFs and the agents
    for task in (
        "Bind PCI ports to the DPDK driver",
        "Run onvm-mgr for",
        "NF instances",
        "Agent of",
    ):
        assert "TASK [" in out and task in out, task
    assert machine_state(docker_client, port) == before
    assert not (tmp_path / "redis").exists()
    assert not os.path.exists("/etc/onvm/rack1/fw.rules")  # only the staged copy for the NF's check
    for dev in ("0000:3b:00.0", "0000:3b:00.1"):
        assert os.path.basename(os.readlink(fake.device_path(dev) / "driver")) == "ixgbe"
