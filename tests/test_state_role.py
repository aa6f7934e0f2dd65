"""The global view's role (onvm.nfv.onvm_state) run by ansible-playbook on the
host of the inventory group ``onvm_state``: its password comes from the
inventory, encrypted with Ansible Vault, and only that password opens Redis;
without one, one is made once on that host and kept across runs.  A re-run
changes nothing; undeploy.yml's play stops it.  Each test has a Redis of its
own (port, directory): the deployments of this machine are not touched."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from onvm.lab.deployment import ansible
from onvm.lab.promscrape import free_port

PLAY = """
- name: The global view
  hosts: "{{ groups['onvm_state'] | default(['localhost']) }}"
  gather_facts: false
  roles:
    - role: onvm.nfv.onvm_state
"""


def playbook(*args: str) -> subprocess.CompletedProcess[str]:
    return ansible("ansible-playbook", *args)


def recap(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("statehost ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-2000:]
    return lines[-1]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[tuple[Path, int, Path]]:
    """An inventory whose group onvm_state is one host (this machine, local connection), a
    port and a directory of this test's own; Redis stopped afterwards, pass or fail."""
    port = free_port()
    where = tmp_path / "redis"
    inventory = tmp_path / "hosts.yml"
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
        "onvm_state_port": port,
        "onvm_state_dir": str(where),
    }
    inventory.write_text(
        yaml.safe_dump({"all": {"children": {"onvm_state": {"hosts": {"statehost": host}}}}})
    )
    (tmp_path / "play.yml").write_text(PLAY)
    try:
        yield inventory, port, where
    finally:
        pid = where / "redis.pid"
        if pid.exists():
            n = pid.read_text().strip()
            subprocess.run(["kill", n], capture_output=True)
            for _ in range(50):  # gone before the next test looks at the machine
                if not os.path.exists("/proc/%s" % n):
                    break
                time.sleep(0.1)


def test_the_password_comes_from_the_inventory_encrypted_with_vault(
    state: tuple[Path, int, Path], tmp_path: Path
) -> None:
    inventory, port, where = state
    secret = "from-the-vault-%d" % port
    vault_pass = tmp_path / "vault-pass"
    vault_pass.write_text("test vault password\n")
    proc = ansible(
        "ansible-vault",
        "encrypt_string",
        "--vault-password-file",
        str(vault_pass),
        secret,
        "--name",
        "onvm_state_password",
    )
    assert proc.returncode == 0, proc.stderr
    enc = proc.stdout
    assert "$ANSIBLE_VAULT" in enc and secret not in enc
    group_vars = inventory.parent / "group_vars"
    group_vars.mkdir()
    (group_vars / "onvm_state.yml").write_text("---\n" + enc)
    args = ("-i", str(inventory), "--vault-password-file", str(vault_pass), str(tmp_path / "play.yml"))
    first = playbook(*args)
    assert "changed=0" not in recap(first)
    assert secret not in first.stdout  # no_log
    r = redis.Redis(port=port, password=secret, socket_timeout=5)
    assert r.ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, socket_timeout=5).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, password="another", socket_timeout=5).ping()
    assert (where / "password").read_text() == secret + "\n"
    assert (where / "password").stat().st_mode & 0o777 == 0o600
    assert "changed=0" in recap(playbook(*args))
    # without the vault's password the run stops before anything changes
    refused = playbook("-i", str(inventory), str(tmp_path / "play.yml"))
    assert refused.returncode != 0 and "vault" in (refused.stdout + refused.stderr).lower()
    assert r.ping()


def test_without_one_a_password_is_made_once_on_the_state_host(
    state: tuple[Path, int, Path], tmp_path: Path
) -> None:
    inventory, port, where = state
    args = ("-i", str(inventory), str(tmp_path / "play.yml"))
    # a check first: it would make one, and makes nothing
    assert "changed=0" not in recap(playbook(*args, "--check", "--diff"))
    assert not where.exists()
    assert "changed=0" not in recap(playbook(*args))
    made = (where / "password").read_text().strip()
    assert len(made) >= 24
    assert redis.Redis(port=port, password=made, socket_timeout=5).ping()
    assert "changed=0" in recap(playbook(*args))
    assert (where / "password").read_text().strip() == made
