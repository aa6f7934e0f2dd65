"""Day-2 mistakes on a running deployment, made the way an operator makes
them: group_vars edited, ``deploy.yml`` re-run.  Each bad change is refused
before anything is touched -- the manager keeps its pid, its NF containers,
chain table and hugepages stay as they were -- and frames sent through the
chain while the refused run goes on all come out.  A manager that would not
start is never stopped for it (``onvm-mgr --check``, run for every host in
deploy.yml's first play).  ``--check --diff`` of good changes (a rule added,
the manager's memory) shows them and changes nothing.  After all of them, a re-run of the unchanged
deployment changes nothing."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from onvm.lab import traffic
from onvm.lab.deployment import SERVICES, WEB, Deployment, recap
from onvm.lab.netns import VethPort

BAD_RULES = "default allow\ndeny udp dport 22\n"  # "proto" missing
# (what, the group_vars it changes, what the refusal says, refused in the first play: before
# any host is changed; the others are refused by the task that would make the change)
BAD_CHANGES: list[tuple[str, dict[str, Any], str, bool]] = [
    ("no such device", {"onvm_ports": ["virtio2"]}, "unknown port 'virtio2'", True),
    (
        "the machine's own NIC",
        {"onvm_ports": ["net_af_packet9,iface=eth0"]},
        "refusing interface 'eth0'",
        True,
    ),
    ("no such driver", {"onvm_ports": ["net_nosuch0"]}, "no DPDK vdev driver 'net_nosuch'", True),
    ("no such cpu", {"onvm_manager": {"core": 64, "mem_mb": 64}}, "--core 64: no such cpu", True),
    ("too much memory", {"onvm_manager": {"core": 1, "mem_mb": 100_000}}, "not enough hugepages", True),
    (
        "an egress port the host lacks",
        {"onvm_chains": {"web": {**WEB, "egress": "port7"}}},
        "chain web: egress: no port port7 on this host (it has 2)",
        True,
    ),
    (
        "an unknown service",
        {"onvm_chains": {"web": {**WEB, "services": ["firewall", "nosuch"]}}},
        "onvm_chains.web.services[1]: unknown service 'nosuch'",
        True,
    ),
    (
        "a bad instance count",
        {"onvm_services": {**SERVICES, "forward": {**SERVICES["forward"], "instances": "two"}}},
        "onvm_services.forward.instances",
        True,
    ),
    (
        "firewall args naming no file",
        {"onvm_services": {**SERVICES, "firewall": {**SERVICES["firewall"], "args": ["-r", "/etc/nosuch"]}}},
        "firewall would not start with these options, nothing was changed: "
        "firewall: cannot open rules file /etc/nosuch",
        True,
    ),
    ("a rules file the firewall cannot parse", {"rules": BAD_RULES}, "line 2: bad rule", True),
    # the manager's change alone would restart it in the third play: the NF's
    # refusal of its new file must come first, with the manager untouched
    (
        "a bad rules file beside a manager change",
        {"rules": BAD_RULES, "onvm_manager": {"core": 1, "mem_mb": 96}},
        "line 2: bad rule",
        True,
    ),
]


@pytest.mark.dataplane
@pytest.mark.docker
def test_bad_changes_to_a_running_deployment_are_refused_with_nothing_touched(
    deployment: Deployment, docker_client: Any
) -> None:
    d = deployment
    ingress, egress = VethPort.of(d.name, 0), VethPort.of(d.name, 1)
    sent = 0
    for what, change, message, first_play in BAD_CHANGES:
        if "rules" in change:  # files/fw.rules rewritten (and the other group_vars given)
            change = {k: v for k, v in change.items() if k != "rules"} | {
                "onvm_files_dir": d.files_with_rules(change["rules"])
            }
        before = d.state(docker_client)
        # constant traffic (dports the rules allow) while the refused run goes on
        rx = traffic.Receiver(egress)
        result: dict[str, subprocess.CompletedProcess[str]] = {}
        run = threading.Thread(target=lambda c=change, r=result: r.update(proc=d.run("deploy.yml", c)))
        try:
            sender = traffic.send(ingress, 4000, dports="3000-3999", rate=1000.0, first=sent, wait=False)
            run.start()
            run.join(600)
            assert sender.wait(120) == 0
            counts = rx.wait_for(4000, timeout=10)
        finally:
            counts = rx.stop()
        sent += 4000
        proc = result["proc"]
        assert proc.returncode != 0, "%s: not refused\n%s" % (what, proc.stdout[-3000:])
        assert message in proc.stdout, "%s\n%s" % (what, proc.stdout[-3000:])
        assert ("PLAY [Deploy onvm]" in proc.stdout) is not first_play, what
        assert d.state(docker_client) == before, what
        assert (counts["received"], counts["dups"]) == (4000, 0), "%s: frames lost %s" % (what, counts)
    # a good change (a deny rule added) is foreseen by --check --diff, with nothing changed
    before = d.state(docker_client)
    rules = Path(d.good["onvm_files_dir"]) / "fw.rules"
    as_deployed = rules.read_text()
    rules.write_text(as_deployed + "deny proto udp dport 3900-3999\n")
    try:
        check = d.run("deploy.yml", options=("--check", "--diff"))
    finally:
        rules.write_text(as_deployed)
    assert check.returncode == 0, check.stdout[-3000:]
    firewall = "onvm-%s-firewall-0" % d.name
    assert "old_configuration" in check.stdout and firewall in check.stdout, check.stdout[-3000:]
    assert "+deny proto udp dport 3900-3999" in check.stdout  # the file's diff
    assert d.state(docker_client) == before
    # one that restarts the manager, foreseen: the diff says so, nothing restarts
    d.write_vars({**d.good, "onvm_manager": {"core": 1, "mem_mb": 96}})
    try:
        check = d.run("deploy.yml", options=("--check", "--diff"))
    finally:
        d.write_vars(d.good)
    assert check.returncode == 0, check.stdout[-3000:]
    assert '"restart": true' in check.stdout and '"mem_mb": 96' in check.stdout, check.stdout[-3000:]
    assert d.state(docker_client) == before
    # nothing of it stayed behind: the unchanged deployment re-runs with no change
    again = d.run("deploy.yml")
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap(again.stdout)["changed"] == 0, again.stdout[-3000:]
