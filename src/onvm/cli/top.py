"""onvm top: the cluster's global view, live (refreshed every second from
Redis): each host, each service's instances with their rates, drops and load
share, and the newest scale events.  Ctrl-C quits."""

from __future__ import annotations

import sys
import time
from typing import Any

import redis
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ansible_collections.onvm.nfv.plugins.module_utils import global_view, scale_queue

from .errors import redis_error

EVENTS = 8  # newest scale events shown


def _mpps(pps: float) -> str:
    return "%.4f" % (pps / 1e6)


def hosts_table(view: dict[str, Any]) -> Table:
    t = Table(title="hosts", title_justify="left", expand=True)
    for col in ("host", "cpus", "free cores", "instances", "rx Mpps", "tx Mpps", "drop/s"):
        t.add_column(col, justify="left" if col == "host" else "right")
    per: dict[str, list[dict[str, Any]]] = {h: [] for h in view["hosts"]}
    for insts in view["services"].values():
        for i in insts:
            per.setdefault(i["host"], []).append(i)
    for h in sorted(view["hosts"]):
        info, insts = view["hosts"][h], per[h]
        t.add_row(
            h,
            "%d" % int(info["cpus"]),
            "%.2f" % info["free_cores"],
            "%d" % len(insts),
            _mpps(sum(i["rx_pps"] for i in insts)),
            _mpps(sum(i["tx_pps"] for i in insts)),
            "%.0f" % sum(i["drop_pps"] for i in insts),
        )
    return t


def instances_table(view: dict[str, Any]) -> Table:
    t = Table(title="instances", title_justify="left", expand=True)
    for col in ("service", "host", "inst", "rx Mpps", "tx Mpps", "drop/s", "load %", "flows"):
        t.add_column(col, justify="left" if col in ("service", "host") else "right")
    for svc in sorted(view["services"]):
        for i in sorted(view["services"][svc], key=lambda i: (i["host"], i["instance"])):
            drops = "%.0f" % i["drop_pps"]
            t.add_row(
                svc,
                i["host"],
                "%d" % i["instance"],
                _mpps(i["rx_pps"]),
                _mpps(i["tx_pps"]),
                Text(drops, style="bold red") if i["drop_pps"] > 0 else drops,
                "%.0f" % (100 * i["load"]),
                "%d" % i.get("flows", 0),
            )
    return t


def events_table(events: list[dict[str, str]]) -> Table:
    t = Table(title="scale events (newest first)", title_justify="left", expand=True)
    for col in ("time", "event", "service", "detail"):
        t.add_column(col)
    for e in events[:EVENTS]:
        when = time.strftime("%H:%M:%S", time.localtime(int(e.get("ms", "0")) / 1000))
        detail = " ".join(
            "%s=%s" % (k, e[k]) for k in ("host", "reason", "origin", "container", "dead") if e.get(k)
        )
        t.add_row(when, e["kind"], e.get("service", ""), detail)
    return t


def frame(view: dict[str, Any], events: list[dict[str, str]], url: str) -> Group:
    head = Text("onvm top  %s  %s  (Ctrl-C quits)" % (url, time.strftime("%H:%M:%S")), style="bold")
    return Group(head, hosts_table(view), instances_table(view), events_table(events))


def run(url: str, interval: float = 1.0, password_file: str | None = None) -> int:
    try:
        r = global_view.connect(url, password_file, socket_timeout=3, socket_connect_timeout=2)
    except OSError as e:
        print("onvm: --redis-password-file: %s" % e, file=sys.stderr)
        return 1
    try:
        with Live(console=Console(), screen=True, auto_refresh=False) as live:
            while True:
                try:
                    live.update(frame(global_view.view(r), scale_queue.events(r, EVENTS), url), refresh=True)
                except redis.RedisError as e:
                    live.update(Text("%s (retrying)" % redis_error(url, e), style="red"), refresh=True)
                time.sleep(interval)
    except KeyboardInterrupt:
        return 0
