#!/usr/bin/env python3
"""Benchmark: what each day-2 change costs a running deployment.  Not a
throughput figure: frames lost, and how long until the change is in effect.

A host deployed by deploy.yml under names of its own (src/onvm/lab/deployment.py:
firewall -> forward on lab ports port0 -> port1, the scaler, its own Redis)
gets one change after another, each made as an operator makes it: its
group_vars file (or files/fw.rules) edited, then `ansible-playbook deploy.yml`
run for real.  Under each run, constant traffic through the chain:

  steady  1,000 frames/s to UDP ports 3000-3499, allowed by every
          configuration: each one sent must come out (port1, or port2 once
          the egress moves there); lost = sent - received, outage = the
          longest run of consecutive missing frames / the rate
  probe   200 frames/s to one port the change allows or denies: the first
          (or last) probe frame through dates when the new configuration
          took effect, counted from the start of the play (the sender paces
          frames evenly, so a frame's sequence number is its send time;
          resolution about 0.1 s, plus the sender's start-up)

and per change: the play's wall time, and whether the next run (nothing
edited) is 0 changed.  Target: 0 lost for every change that does not
restart the manager; for those that do, loss and outage stated.

    .venv/bin/python -m bench.change [--rate 1000]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker

from bench.results_io import report
from onvm.lab import bursts, traffic
from onvm.lab.deployment import SERVICES, WEB, Deployment, recap
from onvm.lab.hugepages import ensure_free
from onvm.lab.netns import VethPort
from onvm.lab.single_host import VERSION

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEADY_BASE, PROBE_BASE = 0, 10_000_000
PROBE_RATE = 200.0
NEW_TAG = "onvm/firewall:%s-bench" % VERSION

Edit = Callable[[dict[str, Any], Deployment], None]


def rules(text: str) -> Edit:
    def edit(_v: dict[str, Any], d: Deployment) -> None:
        (Path(d.good["onvm_files_dir"]) / "fw.rules").write_text(text)

    return edit


def setting(fn: Callable[[dict[str, Any]], None]) -> Edit:
    return lambda v, _d: fn(v)


# (name, the edit, probe dport, what the probe shows once in effect: "blocked",
#  "passes", or None: no traffic signal (in effect when the play returns),
#  whether the change restarts the manager)
CHANGES: list[tuple[str, Edit, int | None, str | None, bool]] = [
    ("rules file: deny 3900-3999 added", rules("default allow\ndeny proto udp dport 3900-3999\n"), 3950,
     "blocked", False),
    ("image: a new tag", setting(lambda v: v["onvm_services"]["firewall"].update(image=NEW_TAG)), None, None,
     False),
    ("instances 1 -> 2", setting(lambda v: v["onvm_services"]["firewall"].update(instances=2)), None, None,
     False),
    ("instances 2 -> 1 (max_instances 2 -> 1)",
     setting(lambda v: v["onvm_services"]["firewall"].update(instances=1, max_instances=1)), None, None,
     False),
    ("chain: a service inserted (pyfilter, deny 3800-3899)",
     setting(lambda v: v["onvm_chains"]["web"].update(services=["firewall", "pyfilter", "forward"])), 3850,
     "blocked", False),
    ("chain: services reordered",
     setting(lambda v: v["onvm_chains"]["web"].update(services=["pyfilter", "firewall", "forward"])), None,
     None, False),
    ("chain: a service removed (pyfilter)",
     setting(lambda v: v["onvm_chains"]["web"].update(services=["firewall", "forward"])), 3850, "passes",
     False),
    ("chain: match narrowed to the sender (src 198.18.1.1)",
     setting(lambda v: v["onvm_chains"]["web"]["match"].update(src="198.18.1.1")), None, None, False),
    ("scaling policy: high 0.9 -> 0.8", setting(lambda v: v["onvm_scaling"].update(high=0.8)), None, None,
     False),
    ("manager: mem_mb 64 -> 80", setting(lambda v: v["onvm_manager"].update(mem_mb=80)), None, None, True),
    ("a new lab port (2 -> 3)", setting(lambda v: v.update(onvm_lab_ports=3)), None, None, False),
    ("chain: egress port1 -> port2", setting(lambda v: v["onvm_chains"]["web"].update(egress="port2")), None,
     None, False),
]  # fmt: skip


def longest_gap(seen: set[int], first: int, n: int) -> int:
    """Longest run of consecutive sequence numbers in [first, first+n) not seen."""
    best = run = 0
    for seq in range(first, first + n):
        run = 0 if seq in seen else run + 1
        best = max(best, run)
    return best


def apply(d: Deployment, name: str, edit: Edit, probe: int | None, shows: str | None,
          restarts: bool, rate: float, vars_now: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    edit(vars_now, d)
    d.write_vars(vars_now)
    ingress = VethPort.of(d.name, 0)
    # counted on every lab port but the ingress that exists now (a port the play adds has no
    # namespace yet; the chain sends nothing there before a later change moves its egress)
    egress_ports = [
        VethPort.of(d.name, i)
        for i in range(1, int(vars_now["onvm_lab_ports"]))
        if os.path.exists("/run/netns/onvm-%s-n%d" % (d.name, i))
    ]
    receivers = [traffic.Receiver(p, seqs=True) for p in egress_ports]
    try:
        t_steady = time.monotonic()
        steady = traffic.send_until_stopped(ingress, "3000-3499", rate, STEADY_BASE)
        t_probe = time.monotonic()
        prober = traffic.send_until_stopped(ingress, str(probe), PROBE_RATE, PROBE_BASE) if probe else None
        time.sleep(1.0)  # traffic flows through the old configuration first
        t_play = time.monotonic()
        play = d.run("deploy.yml")
        wall = time.monotonic() - t_play
        time.sleep(2.0)  # and through the new one after
        sent = traffic.stop_sending(steady)
        probes = traffic.stop_sending(prober) if prober else 0
        time.sleep(0.5)
    finally:
        counts = [r.stop() for r in receivers]
    seen = {s for c in counts for s in c.get("seqs", [])}
    got = {s for s in seen if STEADY_BASE <= s < STEADY_BASE + sent}
    got_probe = sorted(s - PROBE_BASE for s in seen if PROBE_BASE <= s < PROBE_BASE + probes)
    effect: float | None = None
    if shows == "blocked" and got_probe:
        effect = (got_probe[-1] + 1) / PROBE_RATE + (t_probe - t_play)
    elif shows == "passes" and got_probe:
        effect = got_probe[0] / PROBE_RATE + (t_probe - t_play)
    again = d.run("deploy.yml")
    row = {
        "change": name,
        "restarts_manager": restarts,
        "ok": play.returncode == 0,
        "sent": sent,
        "lost": sent - len(got),
        "outage_s": round(longest_gap(seen, STEADY_BASE, sent) / rate, 3),
        "in_effect_s": round(effect, 2) if effect is not None else None,
        "in_effect_by": "probe %d %s" % (probe, shows) if probe else "play returned",
        "probe_through": len(got_probe),
        "play_s": round(wall, 1),
        "next_run_changed": recap(again.stdout)["changed"] if again.returncode == 0 else None,
        "since_steady_start_s": round(t_play - t_steady, 2),
    }
    if play.returncode != 0:
        row["error"] = play.stdout[-2000:]
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=1000.0, help="steady frames a second (default 1000)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "change.json"))
    args = ap.parse_args()
    client = docker.from_env()
    client.images.get("onvm/firewall:%s" % VERSION).tag(NEW_TAG)
    ensure_free(200)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="onvm-change-") as where:
        d = Deployment("chg%d" % (os.getpid() % 1000), Path(where), redis_port=6394, metrics_port=9474)
        vars_now = copy.deepcopy(d.good)
        vars_now["onvm_services"]["pyfilter"] = {
            "image": "onvm/pyfilter:%s" % VERSION,
            "instances": 1,
            "args": ["--deny", "3800-3899"],
        }
        vars_now["onvm_scaling"] = bursts.deploy_policy()
        d.write_vars(vars_now)
        try:
            first = d.run("deploy.yml")
            if first.returncode != 0:
                print(first.stdout[-3000:])
                return 1
            for name, edit, probe, shows, restarts in CHANGES:
                row = apply(d, name, edit, probe, shows, restarts, args.rate, vars_now)
                rows.append(row)
                print(
                    "  %-52s lost %5d  outage %6.2f s  in effect %5s s  play %5.1f s  next run changed %s"
                    % (name, row["lost"], row["outage_s"], row["in_effect_s"], row["play_s"],
                       row["next_run_changed"])
                )  # fmt: skip
        finally:
            d.remove()
            client.images.remove(NEW_TAG)
    assert SERVICES and WEB  # the deployment's starting point (src/onvm/lab/deployment.py)
    hitless = [r for r in rows if not r["restarts_manager"]]
    checks = {
        "every play succeeded": all(r["ok"] for r in rows),
        "0 frames lost for every change that does not restart the manager": all(
            r["lost"] == 0 for r in hitless
        ),
        "every next run 0 changed": all(r["next_run_changed"] == 0 for r in rows),
        "every traffic-visible change took effect": all(
            r["in_effect_s"] is not None for r in rows if r["in_effect_by"] != "play returned"
        ),
    }
    result = {
        "what": "day-2 changes through deploy.yml under constant traffic through the chain "
        "(frames lost, outage, seconds until in effect, play wall time, next run changed)",
        "rate": args.rate,
        "probe_rate": PROBE_RATE,
        "changes": rows,
    }
    report(checks, result, args.out)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
