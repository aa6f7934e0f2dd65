#!/usr/bin/env python3
"""Benchmark: how long deploy.yml takes on this machine (inventory/local).

Measures, in one run: a first deploy onto a host with nothing of onvm
running (after undeploy.yml; the package and images stay installed), and a
re-run on the converged host (target: at most 10 s and 0 changed).  Prints
both side by side, with the tasks a re-run spends most on (the callback
bench/callback_plugins/onvm_task_times.py), and writes
bench/results/deploy.json.  What it measures is Ansible's wall time end to
end, with the local connection: over SSH each task costs more.

    .venv/bin/python -m bench.deploy [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.results_io import report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECAP = re.compile(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def playbook(path: str) -> dict[str, Any]:
    times = os.path.join(REPO, "bench", "results", "deploy-tasks.tmp")
    env = {
        **os.environ,
        "PATH": os.path.join(REPO, ".venv/bin") + ":" + os.environ["PATH"],
        "ANSIBLE_CALLBACK_PLUGINS": os.path.join(REPO, "bench", "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "onvm_task_times",
        "ONVM_TASK_TIMES": times,
    }
    t0 = time.monotonic()
    proc = subprocess.run(
        [os.path.join(REPO, ".venv/bin/ansible-playbook"), path, "-i", "inventory/local"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.monotonic() - t0
    m = RECAP.search(proc.stdout)
    if proc.returncode != 0 or m is None:
        raise RuntimeError("%s failed:\n%s" % (path, proc.stdout[-3000:]))
    with open(times) as f:
        tasks = json.load(f)
    os.unlink(times)
    return {
        "seconds": round(seconds, 2),
        "ok": int(m.group(1)),
        "changed": int(m.group(2)),
        "tasks": len(tasks),
        "slowest": sorted(tasks, key=lambda t: -t[1])[:8],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "deploy.json"))
    args = ap.parse_args()
    first, rerun = [], []
    for _ in range(args.repeat):
        playbook("undeploy.yml")
        first.append(playbook("deploy.yml"))
        rerun.append(playbook("deploy.yml"))
    f = statistics.median(r["seconds"] for r in first)
    r = statistics.median(x["seconds"] for x in rerun)
    changed = max(x["changed"] for x in rerun)
    checks = {"re-run <= 10 s": r <= 10, "re-run changes nothing": changed == 0}
    print("%-34s %8s %8s" % ("deploy.yml, inventory/local", "seconds", "changed"))
    print("%-34s %8.1f %8d" % ("first deploy (nothing running)", f, first[0]["changed"]))
    print("%-34s %8.1f %8d" % ("re-run on the converged host", r, changed))
    print(
        "spread: first %.1f-%.1f s, re-run %.1f-%.1f s (%d runs each)"
        % (
            min(x["seconds"] for x in first),
            max(x["seconds"] for x in first),
            min(x["seconds"] for x in rerun),
            max(x["seconds"] for x in rerun),
            len(rerun),
        )
    )
    print("a re-run's %d tasks; the slowest (s):" % rerun[-1]["tasks"])
    for name, secs in rerun[-1]["slowest"]:
        print("  %5.2f  %s" % (secs, name))
    result = {
        "bench": "deploy",
        "first_deploy": {"seconds_median": f, "runs": first},
        "rerun": {"seconds_median": r, "runs": rerun},
    }
    report(checks, result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
