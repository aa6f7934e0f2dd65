"""onvm: look at a host's data plane and at the global view.

onvm status [--host local]              ports, NF instances, chains, pool
onvm cluster [--redis URL] [--redis-password-file FILE]
                                        the global view: hosts, instances, rates
onvm top [--redis URL] [--redis-password-file FILE]
                                        the same, live, with scale events
(the password onvm.nfv.onvm_state made: /var/lib/onvm-redis/password)

Lab traffic (frames into a lab port) is `onvm-lab send`: a lab-only tool.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import redis

from ansible_collections.onvm.nfv.plugins.module_utils import global_view
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlClient, CtlError
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import StatsError, StatsReader, default_path

from .errors import PASSWORD_FILE, redis_error


def _table(rows: list[list[Any]], head: list[str]) -> str:
    cells = [head] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells
    )


def status(host: str) -> int:
    try:
        with CtlClient(host) as ctl:
            chains = ctl.call("chain_list")["chains"]
        with StatsReader(default_path(host)) as reader:
            snap = reader.snapshot()
    except (CtlError, StatsError) as e:
        print("onvm: %s" % e, file=sys.stderr)
        return 1
    print(
        "host %s  manager pid %d  pool %d/%d free  flows %d"
        % (snap["host"], snap["mgr_pid"], snap["pool"]["avail"], snap["pool"]["size"], snap["flows_active"])
    )
    print()
    print(
        _table(
            [
                [i, p["name"], p["rx"], p["tx"], p["tx_drop"], p["no_chain"], p["steer_drop"]]
                for i, p in enumerate(snap["ports"])
            ],
            ["port", "device", "rx", "tx", "tx_drop", "no_chain", "steer_drop"],
        )
    )
    print()
    print(
        _table(
            [
                [
                    n["instance"],
                    n["service"],
                    n["state"],
                    n["pid"],
                    n["rx"],
                    n["tx"],
                    n["dropped"],
                    n["rx_drop"],
                    n["flows"],
                    "%d%%" % n["load_pct"],
                ]
                for n in snap["nfs"]
            ],
            ["inst", "service", "state", "pid", "rx", "tx", "dropped", "rx_drop", "flows", "load"],
        )
    )
    print()
    print(
        _table(
            [
                [t["service"], t["instances"], t["rx"], t["tx"], t["dropped"], t["rx_drop"], t["tx_drop"]]
                for t in snap["services"]
            ],
            ["service", "instances", "rx", "tx", "dropped", "rx_drop", "tx_drop"],
        )
    )
    print("(services: totals over every instance this manager has had, gone ones too)")
    print()
    totals = {c["chain"]: c for c in snap["chains"]}
    for c in chains:
        t = totals.get(c["name"], {})
        print(
            "chain %s: %s -> %s (match %s)  in %d  out %d%s"
            % (
                c["name"],
                " -> ".join(c["services"]),
                c["egress"] or "drop",
                c["match"] or "all",
                t.get("rx", 0),
                t.get("tx", 0),
                "  to other hosts %d" % t["remote"] if t.get("remote") else "",
            )
        )
    return 0


def cluster(url: str, password_file: str | None = None) -> int:
    try:
        r = global_view.connect(url, password_file, socket_timeout=3)
        v = global_view.view(r)
        per_host = global_view.host_totals(r, sorted(v["hosts"]))
    except (redis.RedisError, OSError) as e:
        print("onvm: %s" % redis_error(url, e), file=sys.stderr)
        return 1
    print(
        _table(
            [[h, int(i["cpus"]), "%.2f" % i["free_cores"]] for h, i in v["hosts"].items()],
            ["host", "cpus", "free_cores"],
        )
    )
    print()
    rows = [
        [
            svc,
            i["host"],
            i["instance"],
            "%.0f" % i["rx_pps"],
            "%.0f" % i["tx_pps"],
            "%.0f" % i["drop_pps"],
            "%d%%" % round(100 * i["load"]),
        ]
        for svc, insts in v["services"].items()
        for i in insts
    ]
    print(_table(rows, ["service", "host", "inst", "rx/s", "tx/s", "drop/s", "load"]))
    print()
    svc: dict[str, dict[str, int]] = {}
    chain: dict[str, dict[str, int]] = {}
    for t in per_host.values():
        for into, part in ((svc, t.get("services", {})), (chain, t.get("chains", {}))):
            for name, counts in part.items():
                acc = into.setdefault(name, {})
                for k, n in counts.items():
                    acc[k] = acc.get(k, 0) + int(n)
    print(
        _table(
            [[n, c["rx"], c["tx"], c["dropped"], c["rx_drop"], c["tx_drop"]] for n, c in sorted(svc.items())],
            ["service", "rx", "tx", "dropped", "rx_drop", "tx_drop"],
        )
    )
    for n, c in sorted(chain.items()):
        print("chain %s: in %d  out %d  between hosts %d" % (n, c["rx"], c["tx"], c["remote"]))
    print("(totals over the live hosts, gone instances included, since each host's manager started)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="onvm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("status", help="ports, NF instances, chains and the pool of a host")
    st.add_argument("--host", default="local")
    cl = sub.add_parser("cluster", help="the global view in Redis: hosts, services, instances, rates")
    tp = sub.add_parser("top", help="the global view, live: hosts, instances, rates, busy, scale events")
    for p in (cl, tp):
        p.add_argument(
            "--redis",
            default="redis://127.0.0.1:6379/0",
            help="the global view (replicated: redis+sentinel://HOST:PORT[,HOST:PORT...]/NAME[/DB])",
        )
        p.add_argument(
            "--redis-password-file", metavar="FILE", help="the Redis password (%s)" % PASSWORD_FILE
        )
    tp.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes (default 1)")
    args = ap.parse_args(argv)
    if args.cmd == "status":
        return status(args.host)
    if args.cmd == "cluster":
        return cluster(args.redis, args.redis_password_file)
    if args.cmd == "top":
        if not 0.1 <= args.interval <= 60:
            ap.error("--interval: 0.1-60 seconds")
        from . import top  # deferred: the other commands do not need rich

        return top.run(args.redis, args.interval, args.redis_password_file)
    return 1  # argparse allows no other command


if __name__ == "__main__":
    sys.exit(main())
