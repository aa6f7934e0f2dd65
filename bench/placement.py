#!/usr/bin/env python3
"""Benchmark: how long one placement decision of the auto-scaler takes
(placement.place()) on a simulated global view, in microseconds.

The view has ``hosts`` hosts (a fifth of them full) and ``instances``
instances spread over instances/100 services; each decision asks for one
service (one in ten not deployed yet, so the whole cluster is searched)
from a random local host.  Deterministic for a given seed.

    .venv/bin/python -m bench.placement [--hosts 1000] [--instances 10000] [--decisions 2000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils.placement import place


def simulated_view(hosts: int, instances: int, rnd: random.Random) -> dict[str, Any]:
    """A view shaped like global_view.view()'s, ``hosts`` hosts and ``instances`` instances."""
    names = ["host-%04d" % i for i in range(hosts)]
    view_hosts: dict[str, dict[str, float]] = {}
    for n, h in enumerate(names):
        cpus = float(rnd.choice((8, 16, 32, 64)))
        free = 0.0 if rnd.random() < 0.2 else round(rnd.uniform(0.0, cpus) * 4) / 4
        view_hosts[h] = {"cpus": cpus, "free_cores": free, "updated_ms": 1_700_000_000_000.0 + n}
    n_services = max(1, instances // 100)
    services: dict[str, list[dict[str, Any]]] = {}
    for i in range(instances):
        s = "svc-%03d" % rnd.randrange(n_services)
        services.setdefault(s, []).append(
            {
                "host": rnd.choice(names) if names else "host-0000",
                "instance": i + 1,
                "service": s,
                "state": "running",
                "load": round(rnd.random(), 3),
                "rx_pps": 0.0,
                "tx_pps": 0.0,
            }
        )
    for insts in services.values():
        insts.sort(key=lambda i: (i["host"], i["instance"]))
    return {"hosts": view_hosts, "services": dict(sorted(services.items()))}


def measure(
    hosts: int = 1000, instances: int = 10000, decisions: int = 2000, seed: int = 1
) -> dict[str, Any]:
    """Times ``decisions`` calls of place() on one simulated view."""
    rnd = random.Random(seed)
    view = simulated_view(hosts, instances, rnd)
    names = sorted(view["hosts"]) or ["host-0000"]
    deployed = sorted(view["services"]) or ["svc-000"]
    asks = [
        (
            "new-%03d" % rnd.randrange(100) if rnd.random() < 0.1 else rnd.choice(deployed),
            rnd.choice(names),
            rnd.choice((0.5, 1.0, 1.0, 1.0, 2.0)),
        )
        for _ in range(decisions)
    ]
    times_ns: list[int] = []
    clock = time.perf_counter_ns
    for service, local, need in asks:
        t0 = clock()
        place(view, service, local, need)
        times_ns.append(clock() - t0)
    times_ns.sort()
    us = [t / 1000 for t in times_ns] or [0.0]
    return {
        "hosts": hosts,
        "instances": instances,
        "decisions": decisions,
        "median_us": round(statistics.median(us), 1),
        "p99_us": round(us[min(len(us) - 1, (99 * len(us)) // 100)], 1),
        "max_us": round(us[-1], 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--instances", type=int, default=10000)
    ap.add_argument("--decisions", type=int, default=2000)
    args = ap.parse_args()
    r = measure(args.hosts, args.instances, args.decisions)
    print(
        "placement: %d hosts, %d instances, %d decisions: median %.1f us, p99 %.1f us, max %.1f us"
        % (r["hosts"], r["instances"], r["decisions"], r["median_us"], r["p99_us"], r["max_us"])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
