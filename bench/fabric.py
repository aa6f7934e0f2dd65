#!/usr/bin/env python3
"""Benchmark: a chain that crosses hosts, in Mpps, side by side.

speed_tester on host A -> bounce on host B -> back to A, 64-byte packets: the
packets enter chain "bench" [bounce, speed_tester], cross to B in NSH over a
memif fabric link between the two managers, and come back the same way.
Compared in the same run with:
  - the same loop on one host (speed_tester -> bounce -> back, no fabric);
  - the same two-hop trip through the kernel (veth pairs between namespaces,
    bench/kernel_chain.py);
  - the raw memif link between two bare DPDK processes (native/tools/rawlink,
    one per core): the same loop shape (frames sent back by an echo), and
    one way (tx -> rx).
Writes bench/results/fabric.json.  2 cores only: each host's manager shares
its core with that host's NF (shared-core mode), 4 busy threads on 2 cores,
where the raw link has 2.

The VM's speed swings up to 3x from one minute to the next (and the raw link,
all cross-core traffic, swings most), so each cross-host run is paired with a
raw-loop run right after it and the target is judged on the median of the
pairs' ratios, not on two medians taken minutes apart.  Before each pair
native/tools/core_rtt times a cache line's round trip between the two cpus:
where the host has put the two vCPUs right now, which the raw link follows
(all its work crosses cores) far more than the cross-host loop does.

    .venv/bin/python -m bench.fabric [--seconds 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.kernel_chain import run_kernel_chain
from bench.results_io import report
from onvm.lab.hugepages import ensure_free
from onvm.lab.manager import REPO, ManagerProcess, binary
from onvm.lab.ringloop import bounce, cross_host, mpps_of, speed_tester, wait_registered


def summary(r: list[float]) -> dict[str, Any]:
    return {"mpps": round(statistics.median(r), 3), "runs": [round(x, 3) for x in r]}


def runs(repeat: int, fn: Callable[[], float]) -> dict[str, Any]:
    return summary([fn() for _ in range(repeat)])


def rawlink(seconds: float, tx_mode: str, rx_mode: str) -> float:
    """Two bare DPDK primaries joined by memif, one per core; returns the
    Mpps the measuring side (tx for tx/rx, loop for loop/echo) reports."""
    tag = "%d%d" % (os.getpid() % 10000, time.monotonic_ns() % 1000)
    sock = "/var/run/onvm/bench-raw-%s.sock" % tag
    memif = "--vdev=net_memif0,role=%s,id=0,socket=" + sock + ",socket-abstract=no"
    eal = ["--no-pci", "--in-memory", "-m", "64"]
    far = subprocess.Popen(
        [
            binary("rawlink"),
            "-l",
            "1",
            "--file-prefix",
            "raw-b" + tag,
            *eal,
            memif % "server",
            "--",
            "-m",
            rx_mode,
            "-t",
            str(seconds + 30),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(sock):
            if time.monotonic() > deadline or far.poll() is not None:
                raise RuntimeError("rawlink server did not come up")
            time.sleep(0.05)
        return mpps_of(
            [
                binary("rawlink"),
                "-l",
                "0",
                "--file-prefix",
                "raw-a" + tag,
                *eal,
                memif % "client",
                "--",
                "-m",
                tx_mode,
                "-t",
                str(seconds),
            ],
            seconds,
        )
    finally:
        far.terminate()
        far.wait()
        if os.path.exists(sock):
            os.unlink(sock)


def core_rtt() -> float:
    """Cache-line round trip between cpus 0 and 1, ns (native/tools/core_rtt):
    where the VM's two vCPUs sit right now, which is what the raw link's
    speed follows."""
    out = subprocess.run(
        [binary("core_rtt"), "-t", "1"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return float(json.loads(out)["rtt_ns"])


def one_host(seconds: float, repeat: int) -> dict[str, Any]:
    mgr = ManagerProcess("fo%d" % (os.getpid() % 10000), core=0).start()
    nf = bounce(mgr.host, 0, False, [])
    try:
        wait_registered(mgr, "bounce")
        return runs(repeat, lambda: speed_tester(mgr.host, 1, seconds, ["-d", "bounce"], False))
    finally:
        nf.terminate()
        nf.wait()
        mgr.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "fabric.json"))
    args = ap.parse_args()
    subprocess.run(["ninja", "-C", os.path.join(REPO, "build")], check=True, stdout=subprocess.DEVNULL)
    ensure_free(160)
    pairs = []
    for _ in range(args.repeat):
        rtt = core_rtt()
        c = cross_host(args.seconds)
        r = rawlink(args.seconds, "loop", "echo")
        pairs.append(
            {
                "core_rtt_ns": round(rtt, 1),
                "cross_host": round(c, 3),
                "raw_loop": round(r, 3),
                "ratio": round(c / r, 3),
            }
        )
        print(
            "pair: core round trip %.0f ns; cross-host %.2f, raw loop %.2f Mpps: %.0f%%"
            % (rtt, c, r, 100 * c / r),
            flush=True,
        )
    cross = summary([p["cross_host"] for p in pairs])
    raw_loop = summary([p["raw_loop"] for p in pairs])
    ratio = statistics.median(p["ratio"] for p in pairs)
    local = one_host(args.seconds, args.repeat)
    kernel = runs(
        args.repeat, lambda: float(run_kernel_chain(args.seconds, kgen=Path(binary("kgen")))["mpps"])
    )
    raw_oneway = runs(args.repeat, lambda: rawlink(args.seconds, "tx", "rx"))
    checks = {
        "cross-host >= 5x the kernel hop": cross["mpps"] >= 5 * kernel["mpps"],
        "cross-host >= 50% of the raw memif link (same loop, median of paired runs)": ratio >= 0.5,
    }
    print("%-52s %8s" % ("speed_tester -> bounce -> back, 64-byte packets", "Mpps"))
    print("%-52s %8.2f" % ("across two hosts, NSH over memif (shared cores)", cross["mpps"]))
    print("%-52s %8.2f" % ("on one host (dedicated cores)", local["mpps"]))
    print("%-52s %8.2f" % ("kernel: two veth hops between namespaces", kernel["mpps"]))
    print("%-52s %8.2f" % ("raw memif link, bare DPDK loop -> echo -> back", raw_loop["mpps"]))
    print("%-52s %8.2f" % ("raw memif link, bare DPDK one way (tx -> rx)", raw_oneway["mpps"]))
    print(
        "cross-host / kernel = %.1fx; cross-host / raw memif loop = %.0f%% (median of %d pairs: %s)"
        % (
            cross["mpps"] / kernel["mpps"],
            100 * ratio,
            len(pairs),
            ", ".join("%.0f%%" % (100 * p["ratio"]) for p in pairs),
        )
    )
    result = {
        "bench": "fabric",
        "seconds_per_run": args.seconds,
        "cross_host_memif": cross,
        "one_host": local,
        "kernel_veth": kernel,
        "raw_memif_loop": raw_loop,
        "raw_memif_one_way": raw_oneway,
        "cross_and_raw_loop_pairs": pairs,
        "ratios": {
            "cross_over_kernel": round(cross["mpps"] / kernel["mpps"], 2),
            "cross_over_raw_memif_loop": round(ratio, 3),
            "cross_over_one_host": round(cross["mpps"] / local["mpps"], 4),
        },
    }
    report(checks, result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
