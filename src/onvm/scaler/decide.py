"""The scaler's decisions, pure: from the global view and what each host's
inventory declares, what to do about one service.  No Redis, no clock: the
loop (agent.py) reads the view, calls these and carries out the Decision
they return (under the service's cluster-wide cooldown), and the unit tests
call them with views of their own (tests/unit/test_scaler_decide.py).

  scale_out   all of a service's instances here are at their limit: one more,
              placed by module_utils/placement.py (this host first, then hosts
              that run the service, most free cores) among the hosts that
              declare it and run fewer than their max
  scale_in    a service has an instance too many: the least loaded one among
              hosts above their min is drained, by its own host
  replace     hosts were lost: their share of services that fell under their
              cluster minimum is started on live hosts
  reclaim     a request queued on a host that died goes to another
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils import placement

# host -> (instances of the service it runs, the min and the max its inventory declares)
Limits = dict[str, tuple[int, int, int]]


@dataclass(frozen=True)
class Request:
    """One scale request to queue: an instance more on ``host`` (kind
    "out"), or instance ``instance`` drained and stopped (kind "in")."""

    host: str
    kind: str = "out"
    instance: str = ""
    reason: str = ""  # why this host (placement's reason)
    event: str = ""  # the event that says so ("" for none)
    fields: tuple[tuple[str, str], ...] = ()  # the event's extra fields


@dataclass(frozen=True)
class Decision:
    """What the loop does for ``service``: queue ``requests`` (all of them,
    if it takes the service's cooldown); say the cluster is full; say the
    service is ``below_min`` instances short of its minimum; start the
    detector over for it (``reset``: once the requests are queued, or at
    once when the cluster is full)."""

    service: str
    requests: tuple[Request, ...] = ()
    why: str = ""
    full: bool = False
    below_min: int = 0
    lost: tuple[str, ...] = ()
    reset: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


def limits(view: dict[str, Any], service: str, declared: dict[str, tuple[int, int]]) -> Limits:
    """Host -> (instances of ``service`` it runs, its min, its max), for the
    live hosts that declare the service (``declared``: host -> (min, max))."""
    count: dict[str, int] = {}
    for i in view["services"].get(service, []):
        count[i["host"]] = count.get(i["host"], 0) + 1
    return {h: (count.get(h, 0), lo, hi) for h, (lo, hi) in declared.items() if h in view["hosts"]}


def eligible(lim: Limits) -> set[str]:
    """Hosts that may take one more instance: they declare the service and
    run fewer than their max."""
    return {h for h, (n, _, hi) in lim.items() if n < hi}


def decided_on(view: dict[str, Any], service: str, excluded: set[str]) -> str:
    """What a placement of ``service`` was decided on, as JSON for its event:
    each live host's free cores, whether it runs the service, whether it was
    left out (its max reached, or it does not declare it) -- enough to check
    the choice against placement.place afterwards."""
    runs = placement.runners(view, service)
    return json.dumps(
        {
            h: {"free_cores": placement.free_cores(view, h), "runs": h in runs, "excluded": h in excluded}
            for h in sorted(view["hosts"])
        },
        sort_keys=True,
    )


def scale_out(view: dict[str, Any], service: str, here: str, lim: Limits) -> Decision:
    """``service`` is at its limit on ``here``: one more instance somewhere."""
    excluded = set(view["hosts"]) - eligible(lim)
    where = placement.place(view, service, here, exclude=excluded)
    if where.host is None:
        return Decision(service, full=True, reset=True)
    req = Request(
        where.host,
        reason=where.reason,
        event="scale-out-requested",
        fields=(("view", decided_on(view, service, excluded)),),
    )
    return Decision(service, (req,), why="at its limit here", reset=True)


def scale_in(view: dict[str, Any], service: str, here: str, lim: Limits, cluster_min: int) -> Decision | None:
    """``service`` has an instance too many: the least loaded instance among
    the hosts above their min goes, if it is ``here``'s (its host acts);
    never under the cluster's minimum (a lost host's share re-placed here is
    not a surplus)."""
    insts = view["services"].get(service, [])
    if len(insts) <= cluster_min:
        return None
    above = [i for i in insts if i["host"] in lim and lim[i["host"]][0] > lim[i["host"]][1]]
    if not above:
        return None
    least = min(above, key=lambda i: (float(i.get("load", 0.0)), i["host"] != here, i["instance"]))
    if least["host"] != here:
        return None
    loads = " ".join("%s/%s:%.2f" % (i["host"], i["instance"], float(i.get("load", 0.0))) for i in insts)
    req = Request(here, kind="in", instance=str(least["instance"]))
    return Decision(service, (req,), why="an instance too many (loads %s)" % loads, reset=True)


def replace(view: dict[str, Any], service: str, n: int, here: str, lim: Limits, lost: list[str]) -> Decision:
    """``n`` instances of ``service`` were lost with hosts ``lost``: as many
    as the live hosts that declare it have room for, placed one by one (each
    placement takes a core off its host)."""
    hosts = {h: dict(info) for h, info in view["hosts"].items()}
    plan: list[placement.Placement] = []
    for _ in range(n):
        ok = {h for h, (have, _, hi) in lim.items() if have + sum(p.host == h for p in plan) < hi}
        where = placement.place(
            {"hosts": hosts, "services": view["services"]}, service, here, exclude=set(hosts) - ok
        )
        if where.host is None:
            break
        plan.append(where)
        hosts[where.host]["free_cores"] = where.free_cores - 1.0
    names = ",".join(lost)
    reqs = tuple(
        Request(str(p.host), reason=p.reason, event="replace-requested", fields=(("lost", names),))
        for p in plan
    )
    return Decision(service, reqs, why="lost with %s" % names, below_min=n - len(plan), lost=tuple(lost))


def reclaim(view: dict[str, Any], service: str, dead: str, here: str, lim: Limits) -> str | None:
    """Where a request for ``service`` queued on ``dead`` goes instead (None:
    nowhere has room)."""
    where = placement.place(view, service, here, exclude=(set(view["hosts"]) - eligible(lim)) | {dead})
    return None if where.host is None else str(where.host)
