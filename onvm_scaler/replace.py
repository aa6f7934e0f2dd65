"""Host loss: which instances a lost host took with it must be started
again elsewhere (pure, no I/O).

A host is lost when this scaler saw it in the global view and it has gone
(its heartbeat expired: manager or scaler dead, or cut off).  A service the
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

    def __init__(self) -> None:
        self.ran: dict[str, set[str]] = {}
        self.confirmed: set[str] = set()

    def observe(self, view: Mapping[str, Any]) -> dict[str, set[str]]:
        """Take one view; returns the lost hosts with the services they ran."""
        alive = set(view.get("hosts") or {})
        now: dict[str, set[str]] = {h: set() for h in alive}
        for svc, insts in (view.get("services") or {}).items():
            for i in insts:
                if i.get("host") in now:
                    now[i["host"]].add(svc)
        self.ran.update(now)
        self.confirmed -= alive  # back: if it goes again, that is a new loss
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
