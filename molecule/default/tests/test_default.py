"""Verify the single-host deploy: what runs, how, and that the chain carries
packets (counted at its egress)."""

from __future__ import annotations

import json
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import StatsReader, default_path
from onvm_lab import traffic
from onvm_lab.netns import VethPort
from onvm_lab.single_host import wait_until

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
