"""undeploy.yml as an operator runs it: everything deploy.yml made on the
host goes (manager and what it leaves, NF containers with their PID-namespace
holder, lab ports), and running it again changes nothing."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import names
from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from onvm.lab.deployment import Deployment, recap
from onvm.lab.manager import leftovers


@pytest.mark.dataplane
@pytest.mark.docker
def test_undeploy_removes_it_all_and_a_second_run_changes_nothing(
    deployment: Deployment, docker_client: Any
) -> None:
    d = deployment
    assert nc.find(docker_client, d.name) and leftovers(d.name)  # deployed: something to remove
    first = d.run("undeploy.yml")
    assert first.returncode == 0, first.stdout[-3000:]
    assert recap(first.stdout)["changed"] > 0
    assert leftovers(d.name) == []
    assert [c.name for c in docker_client.containers.list(all=True)
            if c.name.startswith(names.container_prefix(d.name))] == []  # fmt: skip
    assert [n for n in os.listdir("/run/netns") if n.startswith(names.file_prefix(d.name) + "-")] == []
    again = d.run("undeploy.yml")
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
