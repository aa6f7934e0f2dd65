#!/usr/bin/env python3
"""Benchmark: packets around a generator -> NF -> back loop, in Mpps, side by side.

1. the limit: the same loop from two bare rte_rings between the two cores
   (native/tools/ring_limit: no manager, no steering, no tables), measured
   in turn with the onvm chain, run by run;
2. onvm, 64-byte packets, NFs as containers attached to onvm-mgr:
   speed_tester looping to itself; speed_tester -> bounce -> back on two
   cores; the same with both NFs sharing one core (shared-core mode);
3. what a user would otherwise build: the two-hop chain through kernel veth
   pairs between network namespaces (bench/kernel_chain.py);
4. one NF written in Python against the same NF in C: speed_tester ->
   filter -> back through a chain, the filter being pyfilter (Python, on the
   cffi binding's burst API) or firewall (C), same rule (deny UDP dport
   1000-1999; speed_tester's packets pass).

Also the idle manager's CPU share.  Prints a table and writes
bench/results/chain.json.  Run as root after `scripts/setup.sh`:

    .venv/bin/python -m bench.chain [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container
from bench.kernel_chain import run_kernel_chain
from bench.results_io import report
from onvm.lab.cpu import core_share
from onvm.lab.hugepages import ensure_free
from onvm.lab.manager import REPO, ManagerProcess, binary

VERSION = "0.1.0"
# openNetVM v21.10 ported to DPDK 22.11, on these 2 cores (shared/MACHINE-FACTS.md)
PEER = {"loopback": 51.0, "chain": 9.5, "shared_core": 1.17}


def ring_limit(seconds: float) -> float:
    prefix = "onvm-ringlimit-%d" % os.getpid()
    try:
        out = subprocess.run(
            [
                binary("ring_limit"),
                "-l",
                "0,1",
                "--in-memory",
                "--file-prefix",
                prefix,
                "--no-pci",
                "--no-telemetry",
                "--log-level=lib.eal:error",
                "--",
                "-t",
                str(seconds),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        shutil.rmtree(os.path.join("/var/run/dpdk", prefix), ignore_errors=True)
    return float(json.loads(out.strip().splitlines()[-1])["mpps"])


def speed_tester(
    client: Any,
    host: str,
    core: int,
    seconds: float,
    dest: str | None = None,
    shared: bool = False,
    chain: str | None = None,
) -> float:
    args = ["-t", str(seconds)] + (["-d", dest] if dest else []) + (["-c", chain] if chain else [])
    spec = nf_container.NFSpec(
        host=host,
        service="speed_tester",
        image="onvm/speed_tester:" + VERSION,
        name="onvm-%s-speed_tester" % host,
        core=core,
        shared_core=shared,
        args=args,
    )
    nf_container.ensure_pidns(client, host)
    c = client.containers.create(**nf_container.run_kwargs(spec))
    try:
        c.start()
        rc = c.wait(timeout=seconds + 60)["StatusCode"]
        logs = c.logs().decode()
        if rc != 0:
            raise RuntimeError("speed_tester failed (%d): %s" % (rc, logs))
        return float(json.loads(logs.strip().splitlines()[-1])["mpps"])
    finally:
        c.remove(force=True)


def median_of(repeat: int, fn: Callable[[], float]) -> dict[str, Any]:
    runs = [fn() for _ in range(repeat)]
    return {"mpps": round(statistics.median(runs), 3), "runs": [round(r, 3) for r in runs]}


RULES = Path(REPO) / "files" / "fw.rules"  # deny udp dport 1000-1999


def filter_runs(client: Any, mgr: ManagerProcess, seconds: float, repeat: int) -> dict[str, Any]:
    """speed_tester -> filter -> back (chain "loop"), the filter in C and in Python."""
    host = mgr.host
    mgr.call("service_add", name="speed_tester")
    nfs = {
        "c_firewall": nf_container.NFSpec(
            host=host,
            service="filter",
            image="onvm/firewall:" + VERSION,
            name="onvm-%s-filter-c" % host,
            core=0,
            files={str(RULES): "/etc/onvm/fw.rules"},
        ),
        "python_pyfilter": nf_container.NFSpec(
            host=host,
            service="filter",
            image="onvm/pyfilter:" + VERSION,
            name="onvm-%s-filter-py" % host,
            core=0,
            args=["--deny", "1000-1999"],
        ),
    }
    out: dict[str, Any] = {}
    for name, spec in nfs.items():
        nf_container.start(client, spec)
        try:
            mgr.call("chain_set", name="loop", services=["filter", "speed_tester"], ingress=False)
            out[name] = median_of(repeat, lambda: speed_tester(client, host, 1, seconds, chain="loop"))
        finally:
            nf_container.stop(client, spec.name, timeout=0)
    return out


def onvm_runs(seconds: float, repeat: int) -> dict[str, Any]:
    client = docker.from_env()
    host = "bench%d" % (os.getpid() % 10000)
    ensure_free(64)
    mgr = ManagerProcess(host, core=0).start()
    try:
        time.sleep(0.5)
        idle = core_share([mgr.pid], 3.0)
        res: dict[str, Any] = {"idle_manager_core_share": round(idle, 4)}
        res["loopback"] = median_of(repeat, lambda: speed_tester(client, host, 1, seconds))
        bounce = nf_container.NFSpec(
            host=host, service="bounce", image="onvm/bounce:" + VERSION, name="onvm-%s-bounce" % host, core=0
        )
        nf_container.start(client, bounce)
        # The ring limit is measured in turn with the chain, run by run: on this
        # VM both swing by 4x as the hypervisor moves the two vCPUs (siblings of
        # one core or not), so only runs taken back to back compare.
        limits, chains = [], []
        for _ in range(repeat):
            limits.append(ring_limit(seconds))
            chains.append(speed_tester(client, host, 1, seconds, "bounce"))
        res["ring_limit"] = {
            "mpps": round(statistics.median(limits), 3),
            "runs": [round(x, 3) for x in limits],
        }
        res["chain"] = {"mpps": round(statistics.median(chains), 3), "runs": [round(x, 3) for x in chains]}
        res["chain_over_limit_by_run"] = [round(c / lim, 3) for c, lim in zip(chains, limits, strict=True)]
        nf_container.stop(client, bounce.name, timeout=0)
        bounce.core, bounce.shared_core = 1, True
        nf_container.start(client, bounce)
        res["shared_core"] = median_of(
            repeat, lambda: speed_tester(client, host, 1, seconds, "bounce", shared=True)
        )
        nf_container.stop(client, bounce.name, timeout=0)
        res["filter"] = filter_runs(client, mgr, seconds, repeat)
        return res
    finally:
        nf_container.remove_host(client, host)
        mgr.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0, help="measured time per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median kept)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "chain.json"))
    args = ap.parse_args()
    subprocess.run(
        ["bash", os.path.join(REPO, "native/docker/build-images.sh")], check=True, stdout=subprocess.DEVNULL
    )

    onvm = onvm_runs(args.seconds, args.repeat)
    limit = onvm.pop("ring_limit")
    pair_ratio = statistics.median(onvm["chain_over_limit_by_run"])
    kgen = Path(binary("kgen"))
    kernel = median_of(args.repeat, lambda: float(run_kernel_chain(args.seconds, kgen=kgen)["mpps"]))

    chain = onvm["chain"]["mpps"]
    checks = {
        "chain >= 10x kernel": chain >= 10 * kernel["mpps"],
        "chain >= 50% of ring limit (median of back-to-back pairs)": pair_ratio >= 0.5,
        "loopback >= 1.5x peer": onvm["loopback"]["mpps"] >= 1.5 * PEER["loopback"],
        "chain >= 1.5x peer": chain >= 1.5 * PEER["chain"],
        "shared core >= 1.5x peer": onvm["shared_core"]["mpps"] >= 1.5 * PEER["shared_core"],
        "idle manager < 10% of a core": onvm["idle_manager_core_share"] < 0.10,
        "a Python NF carries packets": onvm["filter"]["python_pyfilter"]["mpps"] > 0,
    }
    rows = [
        ("1. ring limit, 2 cores (bare rte_rings)", limit["mpps"], None),
        ("2. onvm speed_tester loopback", onvm["loopback"]["mpps"], PEER["loopback"]),
        ("2. onvm speed_tester -> bounce -> back", chain, PEER["chain"]),
        ("2. onvm same, both NFs on one core", onvm["shared_core"]["mpps"], PEER["shared_core"]),
        ("3. kernel veth, two hops", kernel["mpps"], None),
        ("4. speed_tester -> firewall (C) -> back", onvm["filter"]["c_firewall"]["mpps"], None),
        ("4. speed_tester -> pyfilter (Python) -> back", onvm["filter"]["python_pyfilter"]["mpps"], None),
    ]
    print("%-44s %10s %14s" % ("64-byte packets", "Mpps", "openNetVM 21.10"))
    for name, mpps, peer in rows:
        print("%-44s %10.2f %14s" % (name, mpps, "" if peer is None else "%.2f" % peer))
    print(
        "chain / kernel = %.1fx, chain / ring limit = %.0f%% (median of back-to-back pairs), "
        "idle manager = %.2f%% of a core"
        % (chain / kernel["mpps"], 100 * pair_ratio, 100 * onvm["idle_manager_core_share"])
    )

    result = {
        "bench": "chain",
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "packet_bytes": 64,
        "seconds_per_run": args.seconds,
        "ring_limit": limit,
        "onvm": onvm,
        "kernel_veth": kernel,
        "peer_opennetvm_21_10": PEER,
        "ratios": {
            "chain_over_kernel": round(chain / kernel["mpps"], 2),
            "chain_over_ring_limit": round(pair_ratio, 3),
        },
    }
    report(checks, result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
