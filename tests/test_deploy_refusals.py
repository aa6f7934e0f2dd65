"""deploy.yml refuses malformed group_vars and missing images before it
touches the host: the message names the bad key, and the host is as it was
(hugepages, no manager, no lab ports, no containers)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container
from onvm.lab.deployment import LOCAL, inventory_yaml
from onvm.lab.manager import REPO, leftovers

GOOD_SERVICES = {"firewall": {"image": "onvm/firewall:0.1.0", "instances": 1}}


@pytest.fixture(autouse=True)
def no_staged_files(tag: str) -> Iterator[None]:
    """The first play stages the NFs' files under /etc/onvm/<host>/staged to ask the NFs about
    them (nothing that runs reads them); a refused deploy leaves them: removed, pass or fail."""
    try:
        yield
    finally:
        shutil.rmtree("/etc/onvm/t" + tag, ignore_errors=True)


def host_state(host: str, client: Any) -> dict[str, Any]:
    with open("/proc/sys/vm/nr_hugepages") as f:
        pages = f.read().strip()
    return {
        "pages": pages,  # the deploy would set 300 (free pages move with other tests' managers)
        "leftovers": leftovers(host),
        "netns": os.path.exists("/run/netns/onvm-%s-n0" % host),
        "containers": [c.name for c in nf_container.find(client, host)],
    }


def deploy(tmp_path: Path, host: str, services: Any, chains: Any) -> subprocess.CompletedProcess[str]:
    extra = tmp_path / "vars.yml"
    extra.write_text(
        yaml.safe_dump(
            {
                "onvm_host": host,
                "onvm_hugepages": 300,
                "onvm_lab_ports": 1,
                "onvm_services": services,
                "onvm_chains": chains,
            }
        )
    )
    return subprocess.run(
        [
            os.path.join(REPO, ".venv/bin/ansible-playbook"),
            "deploy.yml",
            "-i",
            "inventory/local",
            "-e",
            "@%s" % extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": os.path.join(REPO, ".venv/bin") + ":" + os.environ["PATH"]},
    )


@pytest.mark.docker
@pytest.mark.parametrize(
    ("services", "chains", "message"),
    [
        (
            GOOD_SERVICES,
            {"web": {"services": ["firewall", "nosuch"]}},
            "onvm_chains.web.services[1]: unknown service 'nosuch'",
        ),
        (
            {"firewall": {"image": "onvm/firewall:0.1.0", "instances": -2}},
            {},
            "onvm_services.firewall.instances: must be an integer 0-64, got -2",
        ),
        ({"firewall": {"instances": 1}}, {}, "onvm_services.firewall.image: required"),
        (GOOD_SERVICES, {"web": {"services": ["firewall", "firewall"]}}, "appears twice"),
        (
            {"ids": {"image": "example/no-such-ids:9.9", "instances": 1}},
            {},
            "image: 'example/no-such-ids:9.9' is not on this host",
        ),
    ],
)
def test_deploy_refuses_before_touching_the_host(
    tag: str, tmp_path: Path, docker_client: Any, services: Any, chains: Any, message: str
) -> None:
    host = "t" + tag
    before = host_state(host, docker_client)
    proc = deploy(tmp_path, host, services, chains)
    assert proc.returncode != 0
    assert message in proc.stdout, proc.stdout[-3000:]
    assert "Deploy onvm" not in proc.stdout  # the second play never started
    assert host_state(host, docker_client) == before


@pytest.mark.docker
def test_a_host_that_cannot_be_reached_stops_the_deploy_for_all(
    tag: str, tmp_path: Path, docker_client: Any
) -> None:
    """Two hosts, one of them unreachable (SSH refused): the deploy names it
    and stops before the other is touched."""

    host, ghost = "t" + tag, "ghost" + tag
    inv = tmp_path / "inventory"
    shutil.copytree(os.path.join(REPO, "inventory/local/group_vars"), inv / "group_vars")
    (inv / "hosts.yml").write_text(
        inventory_yaml(
            {
                "localhost": {**LOCAL, "onvm_host": host},
                # nothing listens on port 1: refused at once
                ghost: {"ansible_host": "127.0.0.1", "ansible_port": 1, "onvm_host": ghost},
            }
        )
    )
    extra = tmp_path / "vars.yml"
    extra.write_text(
        yaml.safe_dump(
            {"onvm_hugepages": 300, "onvm_lab_ports": 1, "onvm_services": GOOD_SERVICES, "onvm_chains": {}}
        )
    )
    before = host_state(host, docker_client)
    proc = subprocess.run(
        [os.path.join(REPO, ".venv/bin/ansible-playbook"), "deploy.yml", "-i", str(inv), "-e", "@%s" % extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "PATH": os.path.join(REPO, ".venv/bin") + ":" + os.environ["PATH"],
            "ANSIBLE_NOCOLOR": "1",
        },
    )
    after = host_state(host, docker_client)
    if after != before:  # a failure: take back what it deployed before asserting
        subprocess.run(
            [
                *(os.path.join(REPO, ".venv/bin/ansible-playbook"), "undeploy.yml", "-i", str(inv)),
                *("-l", "localhost", "-e", "@%s" % extra),
            ],
            cwd=REPO,
            capture_output=True,
            timeout=300,
            env={**os.environ, "PATH": os.path.join(REPO, ".venv/bin") + ":" + os.environ["PATH"]},
        )
    assert proc.returncode != 0
    assert "fatal: [%s]: UNREACHABLE!" % ghost in proc.stdout, proc.stdout[-3000:]
    assert "port 1: Connection refused" in proc.stdout
    # the later plays start with no host left: none of their tasks runs
    assert "TASK [onvm_" not in proc.stdout, proc.stdout[-3000:]
    assert after == before
