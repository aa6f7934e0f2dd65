"""When to scale (pure, no I/O): an instance is at its limit when the data
plane says so -- its load (busy share) at or above ``high``, or packets
lost to its full rx ring -- and a service is overloaded on a host when all
its instances there are, in every sample of a whole window.  The samples
the agent gives are taken between two consecutive stats updates (~0.1 s),
not over a longer rate window: a burst the instance absorbs shows in one or
two samples and never fills a window; overload shows in all of them.
Packets an NF drops by its verdict (a firewall's deny) are its work, not a
sign of overload.  A service has one instance too many when the
others could carry its whole load under ``low``, for a whole (longer)
in_window.
Between ``low`` and ``high`` nothing happens (hysteresis); after an action
the service's history starts over (the cooldown itself is cluster-wide,
taken in Redis by the agent)."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from .config import Policy


def at_limit(inst: Mapping[str, Any], high: float) -> bool:
    return float(inst.get("load", 0.0)) >= high or float(inst.get("ring_drop_pps", 0.0)) > 0


class _History:
    """Samples (time, condition) of one service; holds for a window when
    every sample over the last ``window`` seconds was true."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, bool]] = deque()

    def add(self, now: float, cond: bool, keep: float) -> None:
        self.samples.append((now, cond))
        while self.samples and self.samples[0][0] < now - keep:
            self.samples.popleft()

    def held(self, now: float, window: float) -> bool:
        """True when watched over the whole window and every sample in it
        says so.  Samples must cover it: one sample after a gap (the
        service gone from here, Redis down) is not a window."""
        if not self.samples or self.samples[0][0] > now - window:
            return False  # not watched for a whole window yet
        if not self.samples[-1][1]:
            return False  # the newest sample says no (most ticks: nothing to scan)
        inside = [(t, c) for t, c in self.samples if t >= now - window]
        if not inside:
            return False  # nothing recent: no longer observed
        # watched all along: no hole longer than a window between samples,
        # counting from the last one before the window
        before = [t for t, _ in self.samples if t < now - window]
        edges = before[-1:] + [t for t, _ in inside]
        if any(b - a > window for a, b in itertools.pairwise(edges)):
            return False
        return all(c for _, c in inside)


class Detector:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.over: dict[str, _History] = {}
        self.under: dict[str, _History] = {}

    @property
    def _keep(self) -> float:
        return 2 * max(self.policy.window, self.policy.in_window) + 1

    def observe(self, now: float, local: Iterable[Mapping[str, Any]], view: Mapping[str, Any]) -> None:
        """One sample of both: this host's instances and the whole view."""
        self.observe_local(now, local)
        self.observe_view(now, view)

    def observe_local(self, now: float, local: Iterable[Mapping[str, Any]]) -> None:
        """One sample of this host's instances (global_view.rates between
        two consecutive stats updates)."""
        by_svc: dict[str, list[Mapping[str, Any]]] = {}
        for i in local:
            by_svc.setdefault(str(i["service"]), []).append(i)
        for svc, insts in by_svc.items():
            self.over.setdefault(svc, _History()).add(
                now, all(at_limit(i, self.policy.high) for i in insts), self._keep
            )

    def observe_view(self, now: float, view: Mapping[str, Any]) -> None:
        """One sample of the whole view (global_view.view), for the
        cluster-wide load of each service."""
        for svc, insts in (view.get("services") or {}).items():
            n = len(insts)
            load = sum(float(i.get("load", 0.0)) for i in insts)
            spare = (
                n > 1
                and load <= (n - 1) * self.policy.low
                and not any(float(i.get("ring_drop_pps", 0.0)) > 0 for i in insts)
            )
            self.under.setdefault(svc, _History()).add(now, spare, self._keep)

    def overloaded(self, now: float) -> list[str]:
        return sorted(s for s, h in self.over.items() if h.held(now, self.policy.window))

    def surplus(self, now: float) -> list[str]:
        return sorted(s for s, h in self.under.items() if h.held(now, self.policy.in_window))

    def reset(self, service: str) -> None:
        self.over.pop(service, None)
        self.under.pop(service, None)
