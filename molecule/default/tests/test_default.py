"""Verify the single-host deploy: what runs, how, and that the chain carries
packets (counted at its egress)."""

from __future__ import annotations

import json
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import StatsReader, default_path
from onvm.lab import traffic
from onvm.lab.netns import VethPort
from onvm.lab.single_host import wait_until

HOST = "mol"  # inventory/hosts.yml: beside a deployment of inventory/local


def test_hugepages_were_raised_by_the_deploy(host: Any) -> None:
    before = int(host.file("/tmp/onvm-molecule-hugepages-before").content_string.strip())
    now = int(host.file("/proc/sys/vm/nr_hugepages").content_string.strip())
    assert before == 128
    assert now == 256


def test_manager_runs(host: Any) -> None:
    procs = [p for p in host.process.filter(comm="onvm-mgr") if "--host %s " % HOST in p.args + " "]
    assert len(procs) == 1
    assert "--core 1" in " ".join(procs[0].args.split())


def test_scaler_runs_from_what_its_role_installed(host: Any) -> None:
    """The agent is the role's install (/opt/onvm/<host>/venv, from the wheels
    the role carries) on the host's own Python, not the checkout or its venv."""
    pid = int(host.file("/run/onvm/onvm-scaler-%s.pid" % HOST).content_string.strip())
    argv = host.file("/proc/%d/cmdline" % pid).content_string.split("\0")
    venv = "/opt/onvm/%s/venv" % HOST
    assert argv[:2] == [venv + "/bin/python", venv + "/bin/onvm-scaler"], argv
    assert host.file(venv + "/bin/python").linked_to == "/usr/bin/python3.11"
    maps = host.file("/proc/%d/maps" % pid).content_string
    assert "/work/" not in maps and ".venv" not in maps
    where = host.check_output(
        venv + "/bin/python -c 'import onvm.scaler, redis; print(onvm.scaler.__file__, redis.__file__)'"
    )
    assert where.startswith(venv + "/lib/python3.11/site-packages/onvm/scaler/"), where
    assert " %s/lib/python3.11/site-packages/redis/" % venv in where, where
    assert host.file(venv + "/build-id").exists
    # everything the wheel holds imports with what the role installed beside it
    # (deferred imports included: the Docker SDK the agent starts instances with)
    every = (
        "import importlib, pkgutil, onvm, docker, ansible_collections.onvm.nfv.plugins.module_utils as mu; "
        "mods = [m.name for m in pkgutil.walk_packages(onvm.__path__, 'onvm.')]; "
        "mods += [m.name for m in pkgutil.walk_packages(mu.__path__, mu.__name__ + '.')]; "
        "[importlib.import_module(m) for m in mods]; print(len(mods), docker.__file__)"
    )
    out = host.check_output("%s/bin/python -c %s", venv, every)
    assert out.split()[1].startswith(venv + "/lib/python3.11/site-packages/docker/"), out
    assert int(out.split()[0]) > 20, out


def test_nf_containers_run_without_network_or_privileges(host: Any) -> None:
    for name in ("onvm-%s-firewall-0" % HOST, "onvm-%s-forward-0" % HOST):
        info = json.loads(host.check_output("docker inspect %s" % name))[0]
        assert info["State"]["Running"]
        hc = info["HostConfig"]
        assert hc["NetworkMode"] == "none"
        assert hc["Privileged"] is False
        assert [c.removeprefix("CAP_") for c in hc["CapDrop"]] == ["ALL"]
        assert [c.removeprefix("CAP_") for c in hc["CapAdd"]] == ["SYS_NICE"]
        assert hc["ReadonlyRootfs"] is True


def test_chain_carries_packets_from_ingress_to_egress() -> None:
    ports = [VethPort.of(HOST, i) for i in range(2)]
    with StatsReader(default_path(HOST)) as st:
        fw = next(n for n in st.snapshot()["nfs"] if n["service"] == "firewall")
    n, denied = 10_000, 3_000  # udp dports 1000-4999 cycled; files/fw.rules denies 1000-1999
    rx = traffic.Receiver(ports[1])
    try:
        traffic.send(ports[0], n, dports="1000-4999", rate=20_000)

        def done() -> bool:
            with StatsReader(default_path(HOST)) as st:
                now = next(x for x in st.snapshot()["nfs"] if x["instance"] == fw["instance"])
            return bool(now["processed"] - fw["processed"] == n)

        assert wait_until(done)
        counts = rx.wait_for(n - denied)
    finally:
        counts = rx.stop()
    assert counts["received"] == n - denied
    assert counts["dups"] == 0


def test_onvm_info_through_ansible_reads_the_deployment() -> None:
    """The info module as users run it (ansible, AnsiballZ: only .py files
    shipped) against what deploy.yml made: it finds the stats layout the
    role installed and reports the chain's instances and totals."""
    import os
    import subprocess

    from onvm.lab.manager import REPO

    env = {**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "onvm_json"}
    env["ANSIBLE_CALLBACK_PLUGINS"] = os.path.join(REPO, "tests", "callback_plugins")
    env.pop("ONVM_STATS_HEADER", None)
    python = "/usr/bin/python3"  # the host's own, as a deploy runs modules
    cmd = [os.path.join(REPO, ".venv", "bin", "ansible"), "localhost", "-i", "localhost,", "-c", "local"]
    cmd += ["-e", "ansible_python_interpreter=" + python, "-m", "onvm.nfv.onvm_info", "-a", "host=" + HOST]
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    (result,) = [r for play in doc["plays"] for task in play["tasks"] for r in task["hosts"].values()]
    assert result["running"] is True
    assert {s["service"] for s in result["stats"]["services"]} >= {"firewall", "forward"}
    assert [c["chain"] for c in result["stats"]["chains"]] == ["web"]
