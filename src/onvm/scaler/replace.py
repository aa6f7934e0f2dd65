"""Host loss: which instances a lost host took with it must be started
again elsewhere (pure, no I/O).

A host is lost when this scaler knew it alive (the membership entries of
the global view) and its heartbeat is older than the TTL (manager or
scaler dead, or cut off), or, after the view could not be read, is still
missing a grace period later.  A service the
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
    """Remembers which services each host ran when last known alive (from
    the cluster's membership entries, global_view.membership), which hosts
    were silent at the last check, and which of those were found not to
    have left cleanly (checked once per loss, not on every tick)."""

    def __init__(self, grace: float = 0.0) -> None:
        self.ran: dict[str, set[str]] = {}
        self.confirmed: set[str] = set()
        self.gone: set[str] = set()
        self.grace = grace
        self.grace_until = 0.0
        self.after_outage = False
        self.recheck = False

    def outage(self) -> None:
        """The view could not be read.  A restarted Redis comes back empty
        and the other agents heartbeat into it again one by one, each after
        its own back-off: for ``grace`` seconds from the next check, a host
        missing from it is not lost yet; when the grace ends every host
        this scaler knows is asked about once (one that died during the
        outage is in no registry any more), and one still missing is lost."""
        self.after_outage = True
        self.recheck = True
        self.confirmed.clear()  # a restarted Redis forgot who left cleanly

    def joined(self, host: str, services: set[str]) -> None:
        """``host`` is alive and runs ``services`` (a membership entry, or
        the live hosts read at start)."""
        self.ran[host] = set(services)

    def suspects(self, now: float) -> list[str]:
        """Hosts to ask the registry about beyond its silent ones: those
        silent at the last check (gone from it since?), and once an outage's
        grace is over, every host this scaler knows."""
        if self.recheck and not self.after_outage and now >= self.grace_until:
            self.recheck = False
            return sorted(self.ran)
        return sorted(self.gone)

    def observe(self, gone: set[str], now: float) -> dict[str, set[str]]:
        """Take one check (``gone``: hosts the registry has as silent or does
        not have; ``now``: a monotonic clock); returns the lost hosts with
        the services they ran.  Only hosts seen alive count."""
        self.gone = {h for h in gone if h in self.ran}
        self.confirmed &= self.gone  # back: if it goes again, that is a new loss
        if self.after_outage:
            self.after_outage = False
            self.grace_until = now + self.grace
        if now < self.grace_until:
            return {}
        return {h: set(self.ran[h]) for h in sorted(self.gone)}

    def unchecked(self, lost: Mapping[str, set[str]]) -> list[str]:
        """The lost hosts not yet checked for a clean leave."""
        return sorted(h for h in lost if h not in self.confirmed)

    def confirm(self, host: str) -> None:
        """``host`` did not leave cleanly: lost until it is seen again."""
        self.confirmed.add(host)

    def forget(self, host: str) -> None:
        """``host`` left cleanly: not lost."""
        self.ran.pop(host, None)
        self.gone.discard(host)
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
