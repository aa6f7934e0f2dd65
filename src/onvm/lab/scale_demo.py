"""The auto-scaling demo on the three-host lab (inventory/lab, chain "scale":
in at lab2's port0, through `slow`, out of port1 of whichever host's
instance took the packet).  `slow` takes at most 2,000 packets a second an
instance; lab2 and lab3 run one each.

  1. overload: 2.2x what one instance takes, in flows of 10 frames that keep
     coming; both instances hit their limit and the scalers start one more:
     not on lab2 (its NF cores are full), not on lab1 (the most free cores,
     but it runs no slow), but on lab3, which runs slow and has room;
  2. the same load again: now all of it arrives;
  3. a light load: one instance too many; the scaler drains it (no new
     flows; its flows stay a while, then move) and stops it -- and every
     frame of the light load arrives.

    python -m onvm.lab.scale_demo [--redis URL] [--redis-password-file FILE] [--json FILE]

Prints a timeline from the global view (instances, delivered and dropped
packets a second) and the placements; exits 1 if a step did not happen.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils import global_view, placement, scale_queue

from . import traffic
from .netns import VethPort

HOSTS = ("lab1", "lab2", "lab3")
# the lab's global view (inventory/lab: a Redis of its own on the management bridge)
LAB_REDIS = "redis://198.18.0.1:6379/0"
LAB_PASSWORD_FILE = "/var/lib/onvm-redis-lab/password"
FLOWS = "1000-60000"


class Timeline:
    """Samples the view every half second: slow's instances, delivered and dropped pps."""

    def __init__(self, r: Any, service: str) -> None:
        self.r, self.service = r, service
        self.rows: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopping:
            insts = global_view.view(self.r)["services"].get(self.service, [])
            self.rows.append(
                {
                    "t": round(time.monotonic() - self.t0, 1),
                    "instances": sorted("%s/%d" % (i["host"], i["instance"]) for i in insts),
                    "load": {"%s/%d" % (i["host"], i["instance"]): i["load"] for i in insts},
                    "flows": {"%s/%d" % (i["host"], i["instance"]): i["flows"] for i in insts},
                    "delivered_pps": round(sum(i["tx_pps"] for i in insts)),
                    "dropped_pps": round(sum(i["drop_pps"] for i in insts)),
                }
            )
            time.sleep(0.5)

    def stop(self) -> list[dict[str, Any]]:
        self.stopping = True
        self.thread.join(5)
        return list(self.rows)


class Offer:
    """Frames into lab2's port0 in flows never seen before; counted at every
    host's port1 by receivers that run from start to close (starting them
    between steps would leave a lull the scaler takes for a drop in load)."""

    def __init__(self) -> None:
        self.seq = 0
        self.rxs = [traffic.Receiver(VethPort.of(h, 1)) for h in HOSTS]

    def total(self) -> dict[str, int]:
        counts = [rx.counts() for rx in self.rxs]
        return {k: sum(c.get(k, 0) for c in counts) for k in ("received", "dups")}

    def close(self) -> None:
        for rx in self.rxs:
            rx.stop()

    def during(self, rate: float, fn: Callable[[], Any]) -> Any:
        """Keep the load on, 2 s at a time, until ``fn`` (run meanwhile) returns."""
        out: list[Any] = []
        t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
        t.start()
        while t.is_alive():
            self(int(2 * rate), rate)
        return out[0] if out else None

    def __call__(self, count: int, rate: float, settle: float = 10.0) -> dict[str, int]:
        """Send and count."""
        base = self.total()
        sender = traffic.send(
            VethPort.of("lab2", 0), count, dports=FLOWS, rate=rate, first=self.seq, flow_len=10, wait=False
        )
        self.seq += count
        if sender.wait(count / rate + 120) != 0:
            raise RuntimeError("sender failed")
        # what is still queued arrives; stop once nothing more has for a second
        deadline, last, still = time.monotonic() + settle, -1, time.monotonic()
        while time.monotonic() < deadline:
            got = self.total()["received"] - base["received"]
            if got >= count:
                break
            if got != last:
                last, still = got, time.monotonic()
            elif time.monotonic() - still > 1.0:
                break
            time.sleep(0.1)
        now = self.total()
        return {
            "sent": count,
            "received": now["received"] - base["received"],
            "dups": now["dups"] - base["dups"],
        }


def slow_instances(r: Any) -> dict[str, int]:
    per: dict[str, int] = {}
    for i in global_view.view(r)["services"].get("slow", []):
        per[i["host"]] = per.get(i["host"], 0) + 1
    return per


def wait(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def placements(r: Any, seen: set[str]) -> list[dict[str, Any]]:
    new = [e for e in reversed(scale_queue.events(r, 1000)) if e["id"] not in seen]
    return [
        {k: e.get(k) for k in ("kind", "host", "reason", "origin", "container", "rx", "processed", "view")}
        for e in new
        if e["kind"] in ("scale-out-requested", "scale-out", "scale-in", "cluster-full")
    ]


def rule_choice(event: dict[str, Any], service: str = "slow") -> str | None:
    """Where placement.place puts ``service`` from the view a
    scale-out-requested event says it was decided on (its origin deciding):
    what the scaler chose must be this, however fast the machine ran."""
    seen = json.loads(event["view"])
    view = {
        "hosts": {h: {"free_cores": v["free_cores"]} for h, v in seen.items()},
        "services": {service: [{"host": h} for h, v in seen.items() if v["runs"]]},
    }
    excluded = {h for h, v in seen.items() if v["excluded"]}
    chosen: str | None = placement.place(view, service, str(event["origin"]), exclude=excluded).host
    return chosen


def lab_redis(url: str, password_file: str | None = LAB_PASSWORD_FILE) -> Any:
    """The deployed view's Redis, with the password onvm.nfv.onvm_state made
    (when there is one)."""
    if password_file and not os.path.exists(password_file):
        password_file = None
    return global_view.connect(url, password_file, socket_timeout=3)


def run(
    redis_url: str,
    cap: int = 2000,
    while_scaled: Callable[[], Any] | None = None,
    password_file: str | None = LAB_PASSWORD_FILE,
) -> dict[str, Any]:
    """The three steps.  ``while_scaled``, if given, runs after the second,
    under the same load, with the extra instance running; its result is in
    "while_scaled", with the instances before and after it and the scaler's
    own scale-ins meanwhile (an instance gone without one was stopped by
    someone else)."""
    r = lab_redis(redis_url, password_file)
    before = slow_instances(r)
    seen = {e["id"] for e in scale_queue.events(r, 1000)}
    res: dict[str, Any] = {"before": before}
    offer = Offer()
    timeline = Timeline(r, "slow")
    try:
        heavy = int(2.2 * cap)
        res["overload"] = offer(6 * heavy, heavy)
        res["scaled_out"] = wait(lambda: sum(slow_instances(r).values()) > sum(before.values()), 20)
        res["after_scale_out"] = slow_instances(r)
        res["steady"] = offer(4 * heavy, heavy)
        res["placements"] = placements(r, seen)
        if while_scaled is not None:
            seen_now = {e["id"] for e in scale_queue.events(r, 1000)}
            held = slow_instances(r)
            result = offer.during(heavy, while_scaled)
            res["while_scaled"] = {
                "result": result,
                "instances_before": held,
                "instances_after": slow_instances(r),
                "scaler_scale_ins": sum(1 for p in placements(r, seen_now) if p["kind"] == "scale-in"),
            }
            seen |= {e["id"] for e in scale_queue.events(r, 1000)}
        light_rate = int(0.4 * cap)
        res["light"] = offer(20 * light_rate, light_rate)
        # back to what it was; the event comes once the drained one is stopped
        # (one scale-in for each instance the scalers added: every one of
        # them waits out in_window and the cooldown)
        res["scaled_in"] = wait(
            lambda: slow_instances(r) == before and any(p["kind"] == "scale-in" for p in placements(r, seen)),
            60,
        )
        res["scale_in"] = [p for p in placements(r, seen) if p["kind"] == "scale-in"]
    finally:
        res["timeline"] = timeline.stop()
        offer.close()
    res["after_scale_in"] = slow_instances(r)
    return res


def report(res: dict[str, Any]) -> bool:
    print("%6s  %-34s %10s %10s" % ("t (s)", "slow instances", "delivered", "dropped"))
    for row in res["timeline"]:
        print(
            "%6.1f  %-34s %10d %10d"
            % (row["t"], " ".join(row["instances"]), row["delivered_pps"], row["dropped_pps"])
        )
    for p in res["placements"] + res["scale_in"]:
        print("event: " + " ".join("%s=%s" % (k, v) for k, v in p.items() if v is not None))
    for name in ("overload", "steady", "light"):
        ph = res[name]
        print(
            "%-9s sent %6d  received %6d  lost %5d"
            % (name, ph["sent"], ph["received"], ph["sent"] - ph["received"])
        )
    asked = [p for p in res["placements"] if p["kind"] == "scale-out-requested"]
    checks = {
        "one more instance, on lab3 (runs slow, has room)": res["scaled_out"]
        and bool(asked)
        and asked[0]["host"] == "lab3"
        and res["after_scale_out"].get("lab3", 0) == res["before"].get("lab3", 0) + 1,
        "every placement is the rule's choice from the view it was made on": all(
            p["host"] == rule_choice(p) for p in asked
        ),
        "after scale-out every frame arrives": res["steady"]["received"] == res["steady"]["sent"],
        "scaled back in": res["scaled_in"],
        "no frame lost during scale-in": res["light"]["received"] == res["light"]["sent"],
    }
    for what, ok in checks.items():
        print("  [%s] %s" % ("ok" if ok else "FAILED", what))
    return all(checks.values())


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--redis", default=LAB_REDIS, help="Redis URL of the lab's global view")
    ap.add_argument(
        "--redis-password-file",
        default=LAB_PASSWORD_FILE,
        help="the Redis password (default %(default)s, when it exists)",
    )
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    res = run(args.redis, password_file=args.redis_password_file)
    ok = report(res)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
