"""Day-2, a port added (``onvm_lab_ports`` 2 -> 3, deploy.yml re-run) to a
running deployment under constant traffic: the manager adds the vdev live
(``port_add``) -- same pid, the NF containers untouched, not a frame lost --
and the new port carries a chain's egress at once.  A second run changes
nothing; --check --diff beforehand changes nothing either.  Taken away again
(3 -> 2), the port costs a manager restart, said in the diff, and its
namespace is removed."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlClient
from onvm.lab import traffic
from onvm.lab.deployment import WEB, Deployment, recap
from onvm.lab.netns import VethPort


def ports_of(d: Deployment) -> list[str]:
    with CtlClient(d.name) as ctl:
        return [p["spec"] for p in ctl.call("status")["ports"]]


@pytest.mark.dataplane
@pytest.mark.docker
def test_a_port_added_to_a_running_deployment_restarts_nothing_and_loses_nothing(
    deployment: Deployment, docker_client: Any
) -> None:
    d = deployment
    ingress, egress = VethPort.of(d.name, 0), VethPort.of(d.name, 1)
    before = d.state(docker_client)
    assert len(ports_of(d)) == 2
    three = {**d.good, "onvm_lab_ports": 3}
    d.write_vars(three)  # as an operator edits group_vars

    check = d.run("deploy.yml", options=("--check", "--diff"))
    assert check.returncode == 0, check.stdout[-3000:]
    assert '"added_ports": [' in check.stdout and '"restart": false' in check.stdout, check.stdout[-4000:]
    assert d.state(docker_client) == before and len(ports_of(d)) == 2

    # constant traffic through the chain from before the play until after it
    rx = traffic.Receiver(egress)
    try:
        sender = traffic.send_until_stopped(ingress, "3000-3999", rate=500.0)
        time.sleep(1.0)
        proc = d.run("deploy.yml", options=("--diff",))
        time.sleep(1.0)
        sent = traffic.stop_sending(sender)
        counts = rx.wait_for(sent, timeout=10)
    finally:
        counts = rx.stop()
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert '"added_ports": [' in proc.stdout and '"restart": false' in proc.stdout, proc.stdout[-4000:]
    assert sent > 5_000 and (counts["received"], counts["dups"]) == (sent, 0), "lost: %d %s" % (sent, counts)
    after = d.state(docker_client)
    for what in ("manager_pid", "containers", "instances", "chains", "scaler_pid"):
        assert after[what] == before[what], what
    assert len(ports_of(d)) == 3 and ports_of(d)[2].startswith("net_af_packet2,")

    # the new port is a port like the others: the chain's egress moves there
    d.write_vars({**three, "onvm_chains": {"web": {**WEB, "egress": "port2"}}})
    moved = d.run("deploy.yml")
    assert moved.returncode == 0, moved.stdout[-4000:]
    rx = traffic.Receiver(VethPort.of(d.name, 2))
    try:
        traffic.send(ingress, 500, dports="3000-3499", rate=5000.0, first=sent)
        out = rx.wait_for(500, timeout=10)
    finally:
        out = rx.stop()
    assert out["received"] == 500, out
    assert d.state(docker_client)["manager_pid"] == before["manager_pid"]
    again = d.run("deploy.yml")
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, again.stdout[-3000:]

    # a port removed restarts the manager (said in the diff) and its namespace goes
    d.write_vars(d.good)
    fewer = d.run("deploy.yml", options=("--diff",))
    assert fewer.returncode == 0, fewer.stdout[-4000:]
    assert '"restart": true' in fewer.stdout, fewer.stdout[-4000:]
    assert len(ports_of(d)) == 2 and not os.path.exists("/run/netns/onvm-%s-n2" % d.name)
    rx = traffic.Receiver(egress)
    try:
        traffic.send(ingress, 500, dports="3000-3499", rate=5000.0, first=sent + 500)
        out = rx.wait_for(500, timeout=10)
    finally:
        out = rx.stop()
    assert out["received"] == 500, out
    again = d.run("deploy.yml")
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
