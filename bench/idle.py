#!/usr/bin/env python3
"""Benchmark: what a host deployed by deploy.yml (inventory/local: the
manager, firewall -> forward, the scaler) costs when it has nothing to do,
on a fresh deploy and after each event of its life (src/onvm/lab/lifecycle.py:
a burst, an NF started, scale-in, scale-out, an NF killed -9, a container
restarted by Docker, the chain swapped, the manager restarted).  Not a
throughput figure: the share of one core each process takes while idle.

Each event is followed by 1 s to settle and 2 s measured from /proc; the
fresh host and the host after the whole walk are also measured over
--seconds (default 60) each, back to back, so the two compare.
Target: manager + NFs + scaler under 3% of one core over a minute.

    .venv/bin/python -m bench.idle [--seconds 60]

The manager is restarted the way an operator does it on these machines
(no systemd): it is stopped and deploy.yml is run again.  A deployment of
inventory/local that was up before is undeployed first (the figures are a
fresh deploy's) and left up at the end; otherwise it is undeployed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

import docker

from ansible_collections.onvm.nfv.plugins.module_utils import global_view
from bench.deploy import playbook
from bench.results_io import report
from onvm.lab import lifecycle
from onvm.lab.netns import VethPort
from onvm.scaler.config import load

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "local"
TARGET = 0.03  # of one core, manager + NFs + scaler, idle


def pid_of(name: str) -> int:
    with open("/run/onvm/%s-%s.pid" % (name, HOST)) as f:
        return int(f.read().strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--seconds", type=float, default=60.0, help="idle measurements, fresh and after (default 60)"
    )
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "idle.json"))
    args = ap.parse_args()
    was_up = os.path.exists("/run/onvm/onvm-mgr-%s.pid" % HOST)
    if was_up:  # measure a fresh deploy; it is deployed again at the end
        playbook("undeploy.yml")
    playbook("deploy.yml")
    try:
        conf = load("/etc/onvm/%s/scaler.json" % HOST)

        def restart_manager() -> None:
            os.kill(pid_of("onvm-mgr"), signal.SIGTERM)
            playbook("deploy.yml")

        h = lifecycle.Host(
            name=HOST,
            docker=docker.from_env(),
            redis=global_view.connect(
                "redis://127.0.0.1:6379/0", global_view.DEFAULT_PASSWORD_FILE, socket_timeout=3
            ),
            ingress=VethPort.of(HOST, 0),
            service="firewall",
            conf=conf.services["firewall"].conf,
            other="forward",
            chain="web",
            restart_manager=restart_manager,
            scaler_pid=lambda: pid_of("onvm-scaler"),
        )
        long_runs: dict[str, dict[str, float]] = {}
        print("fresh deploy, idle %.0f s ..." % args.seconds)
        long_runs["fresh"] = lifecycle.cost(h.pids(), args.seconds)
        steps: list[dict[str, Any]] = []

        def after(step: str, shares: dict[str, float], _snap: dict[str, Any]) -> None:
            steps.append({"step": step, "shares": shares, "total": round(sum(shares.values()), 4)})
            print(
                "%-18s total %5.2f%%  manager %5.2f%%  scaler %5.2f%%  NFs %s"
                % (
                    step,
                    100 * sum(shares.values()),
                    100 * shares.get("onvm-mgr", 0.0),
                    100 * shares.get("onvm-scaler", 0.0),
                    " ".join("%s %.2f%%" % (k, 100 * v) for k, v in shares.items() if "/" in k),
                )
            )

        lifecycle.walk(h, after)
        print("after the walk, idle %.0f s ..." % args.seconds)
        long_runs["after"] = lifecycle.cost(h.pids(), args.seconds)
    finally:
        if not was_up:
            playbook("undeploy.yml")
    print()
    print("%-22s %10s %10s %10s %10s" % ("idle, % of one core", "manager", "scaler", "NFs", "total"))
    for name, shares in long_runs.items():
        nfs = sum(v for k, v in shares.items() if "/" in k)
        print(
            "%-22s %10.2f %10.2f %10.2f %10.2f"
            % (
                name + " (%.0f s)" % args.seconds,
                100 * shares["onvm-mgr"],
                100 * shares["onvm-scaler"],
                100 * nfs,
                100 * sum(shares.values()),
            )
        )
    worst = max(steps, key=lambda s: s["shares"].get("onvm-mgr", 0.0))
    checks = {
        "fresh host under 3% of a core (manager + NFs + scaler)": sum(long_runs["fresh"].values()) < TARGET,
        "after the walk, still under 3%": sum(long_runs["after"].values()) < TARGET,
        "manager idle (< 5%) within 1 s of every event": worst["shares"].get("onvm-mgr", 1.0) < 0.05,
    }
    result = {
        "bench": "idle",
        "what": "share of one core per process, idle, on a host deployed by deploy.yml (inventory/local)",
        "seconds": args.seconds,
        "long_runs": long_runs,
        "steps": steps,
        "not_walked": ["fabric-peer-gone (inventory/local has no fabric; tests/test_lifecycle.py walks it)"],
    }
    report(checks, result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
