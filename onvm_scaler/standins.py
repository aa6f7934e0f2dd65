"""Keep this host's stand-ins for other hosts' instances current from the
global view: a service of this host's chains that another host runs (the
scaler may have just started it there) gets a stand-in behind the fabric
port towards that host, carrying that host's load for it, so that new flows
go where there is the most spare capacity, local or remote."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def wanted(
    host: str, chain_services: set[str], view: Mapping[str, Any], fabric: Mapping[str, str]
) -> dict[tuple[str, str], int]:
    """(service, remote host) -> load percent (pure): the stand-ins ``host``
    needs, for hosts it has a fabric port to."""
    out: dict[tuple[str, str], int] = {}
    for svc in sorted(chain_services):
        per_host: dict[str, list[float]] = {}
        for inst in (view.get("services") or {}).get(svc, []):
            h = inst.get("host")
            if h != host and h in fabric and h in (view.get("hosts") or {}):
                per_host.setdefault(h, []).append(float(inst.get("load", 0.0)))
        for h, loads in per_host.items():
            # the remote manager spreads new flows over its instances: its
            # spare capacity is the mean of theirs
            out[(svc, h)] = max(0, min(100, round(100 * sum(loads) / len(loads))))
    return out


def sync(ctl: Any, host: str, view: Mapping[str, Any], fabric: Mapping[str, str]) -> list[str]:
    """Bring the manager's stand-ins in line with the view; returns what
    changed.  A stand-in for a host that is up but runs no instance of the
    service now (scaled in to 0, or none yet) is drained with its flows moved at
    once -- nothing there would take them -- and revived by the next
    remote_set when instances are back.  Stand-ins are never deleted here:
    their set is the inventory's (the chain module's)."""
    chain_services = {s for c in ctl.call("chain_list")["chains"] for s in c["services"]}
    want = wanted(host, chain_services, view, fabric)
    have = {
        (n["service"], n["remote_host"]): n
        for n in ctl.call("nf_list")["nfs"]
        if n.get("remote_host") and n["state"] in ("running", "draining")
    }
    changes = []
    for (svc, h), load in want.items():
        cur = have.get((svc, h))
        if cur is None or cur["state"] != "running" or abs(int(cur["load_pct"]) - load) >= 5:
            ctl.call("remote_set", service=svc, host=h, port=fabric[h], load=load)
            if cur is None or cur["state"] != "running":
                changes.append("+%s@%s" % (svc, h))
    alive = view.get("hosts") or {}
    for (svc, h), cur in have.items():
        # a host that is up and runs none; one not (yet) in the view is left
        # as it is (hosts that fail are issue 8's, not the scaler's)
        if (svc, h) not in want and h in alive and svc in chain_services and cur["state"] == "running":
            ctl.call("drain", instance=cur["instance"], evict=True)
            changes.append("-%s@%s" % (svc, h))
    return changes
