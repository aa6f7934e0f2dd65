#!/usr/bin/env python3
"""Reliability figures: runs the fault, fuzz, soak, security and bad-input
tests (the same ones CI runs) and collects what they measured: faults
survived and frames lost per fault, inputs fuzzed, bad inputs refused.
With --lab it also runs the three-host lab (molecule test -s lab, whose
last verify step loses a host).  Writes bench/results/reliability.json.

    .venv/bin/python -m bench.reliability [--fuzz-seconds 20] [--lab]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from bench.results_io import report
from onvm.lab.manager import REPO

FILES = {
    "faults": [
        "tests/test_faults.py",
        "tests/test_soak.py",
        "tests/test_global_view.py::test_a_host_whose_agent_dies_is_lost_but_a_redis_restart_loses_nobody",
        "tests/test_global_view.py::test_a_host_that_dies_while_redis_is_down_is_lost_once_redis_is_back",
    ],
    "fuzz": ["tests/test_fuzz.py"],
    "security": ["tests/test_security.py"],
    "bad_inputs": [
        "tests/test_bad_input.py",
        "tests/test_deploy_refusals.py",
        "collections/onvm/tests/unit/plugins/modules/test_dpdk_bind.py",
        "collections/onvm/tests/unit/plugins/modules/test_hugepages.py",
    ],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fuzz-seconds", type=int, default=20)
    ap.add_argument("--lab", action="store_true", help="also run molecule's lab scenario (host loss)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "reliability.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures_path, junit = os.path.join(tmp, "figures.json"), os.path.join(tmp, "junit.xml")
        env = dict(os.environ, ONVM_RELIABILITY_OUT=figures_path, ONVM_FUZZ_SECONDS=str(args.fuzz_seconds))
        files = [f for group in FILES.values() for f in group]
        rc = subprocess.run(
            [
                os.path.join(REPO, ".venv/bin/pytest"),
                "-q",
                "-p",
                "no:cacheprovider",
                "--junitxml",
                junit,
                *files,
            ],
            cwd=REPO,
            env=env,
        ).returncode
        cases = ET.parse(junit).getroot().iter("testcase")
        outcome: dict[str, dict[str, int]] = {g: {"passed": 0, "failed": 0} for g in FILES}
        for case in cases:
            path = case.get("classname", "").replace(".", "/")
            group = next((g for g, fs in FILES.items() if any(path in f for f in fs)), None)
            if group is None:
                continue
            failed = case.find("failure") is not None or case.find("error") is not None
            outcome[group]["failed" if failed else "passed"] += 1
        if args.lab:
            lab = subprocess.run(
                [os.path.join(REPO, ".venv/bin/molecule"), "test", "-s", "lab"], cwd=REPO, env=env
            )
            with open(figures_path) as f:
                ok = lab.returncode == 0 and "host_loss" in json.load(f)
            outcome["host_loss"] = {"passed": int(ok), "failed": int(not ok)}
            rc = rc or lab.returncode
        with open(figures_path) as f:
            figures = json.load(f)
    print("pytest exit %d" % rc)
    for group, o in outcome.items():
        print("  %-10s %3d passed, %d failed" % (group, o["passed"], o["failed"]))
    for name, fig in figures.items():
        print("  %s: %s" % (name, json.dumps(fig)))
    checks = {
        "every fault survived": outcome["faults"]["failed"] == 0 and outcome["faults"]["passed"] > 0,
        "no crash under fuzzing": outcome["fuzz"]["failed"] == 0 and outcome["fuzz"]["passed"] == 2,
        "every bad input refused, nothing changed": outcome["bad_inputs"]["failed"] == 0,
        "least privilege checked": outcome["security"]["failed"] == 0,
    }
    if args.lab:
        checks["host loss survived, nothing lost after it"] = outcome["host_loss"]["passed"] == 1
    report(checks, {"bench": "reliability", "tests": outcome, "figures": figures}, args.out)
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
