"""Host loss: which instances a lost host took with it must be started
again elsewhere (pure, no I/O).

A host is lost when this scaler saw it in the global view and it has gone
(its heartbeat expired: manager or scaler dead, or cut off), or, after the
view could not be read, is still gone a grace period later.  A service the
lost host ran is re-placed when the live instances left are fewer than the
service's cluster minimum (the sum of every inventory host's ``instances``);
one never seen alive by this scaler (not up yet at deploy time), or one that
left cleanly (undeploy: global_view.leave), is nobody's loss.  Where each
new instance goes is module_utils/placement.py's choice, among the live
hosts that declare the service and run fewer than their max.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class LossTracker:
    """Remembers which services each host ran when last seen alive, and
    which of the hosts gone from the view were found not to have left
    cleanly (checked once per loss, not on every tick)."""

    def __init__(self, grace: float = 0.0) -> None:
        self.ran: dict[str, set[str]] = {}
        self.confirmed: set[str] = set()
        self.grace = grace
        self.grace_until = 0.0
        self.after_outage = False

    def outage(self) -> None:
        """The view could not be read.  A restarted Redis comes back empty
        and the other agents heartbeat into it again one by one, each after
        its own back-off: for ``grace`` seconds from the next view, a host
        missing from it is not lost yet; one still missing then (it died
        during the outage) is."""
        self.after_outage = True
        self.confirmed.clear()  # a restarted Redis forgot who left cleanly

    def observe(self, view: Mapping[str, Any], now: float) -> dict[str, set[str]]:
        """Take one view (``now``: a monotonic clock); returns the lost
        hosts with the services they ran."""
        alive = set(view.get("hosts") or {})
        seen: dict[str, set[str]] = {h: set() for h in alive}
        for svc, insts in (view.get("services") or {}).items():
            for i in insts:
                if i.get("host") in seen:
                    seen[i["host"]].add(svc)
        self.ran.update(seen)
        self.confirmed -= alive  # back: if it goes again, that is a new loss
        if self.after_outage:
            self.after_outage = False
            self.grace_until = now + self.grace
        if now < self.grace_until:
            return {}
        return {h: svcs for h, svcs in self.ran.items() if h not in alive}

    def unchecked(self, lost: Mapping[str, set[str]]) -> list[str]:
        """The lost hosts not yet checked for a clean leave."""
        return sorted(h for h in lost if h not in self.confirmed)

    def confirm(self, host: str) -> None:
        """``host`` did not leave cleanly: lost until it is seen again."""
        self.confirmed.add(host)

    def forget(self, host: str) -> None:
        """``host`` left cleanly: not lost."""
        self.ran.pop(host, None)
        self.confirmed.discard(host)


def missing(
    view: Mapping[str, Any], lost: Mapping[str, set[str]], cluster_min: Mapping[str, int]
) -> dict[str, int]:
    """Service -> instances to start again: services a lost host ran whose
    live instances fell under their cluster minimum."""
    out: dict[str, int] = {}
    services = view.get("services") or {}
    for svc in sorted({s for svcs in lost.values() for s in svcs}):
        short = int(cluster_min.get(svc, 0)) - len(services.get(svc, []))
        if short > 0:
            out[svc] = short
    return out
