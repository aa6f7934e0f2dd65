"""Keep this host's stand-ins for other hosts' instances current from the
global view: a service of this host's chains that another host runs (the
scaler may have just started it there) gets a stand-in behind the fabric
port towards that host, carrying that host's spare capacity for it (all its instances'), so that
new flows go where there is the most spare capacity, local or remote."""

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
            out[(svc, h)] = stand_in_load(loads)
    return out


def stand_in_load(loads: list[float]) -> int:
    """The load percent a stand-in carries for a host's instances of a
    service (loads 0-1 each): 100 less their summed spare capacity, at
    least 0.  The local manager steers a new flow to the instance with the
    most spare points, and a stand-in is one entry however many instances
    stand behind it: two remote instances, one idle and one full, have as
    much room as one idle local instance (the mean, 50, would leave half the
    new flows on a full local instance after a remote scale-out)."""
    spare = sum(100 - max(0.0, min(100.0, 100 * load)) for load in loads)
    return max(0, min(100, round(100 - spare)))


def sync(
    ctl: Any, host: str, view: Mapping[str, Any], fabric: Mapping[str, str], chain_services: set[str]
) -> list[str]:
    """Bring the manager's stand-ins in line with the view (``chain_services``:
    the services this host's chains name); returns what changed.  A stand-in
    for a host that runs no instance of the service now (scaled in to 0, none
    yet) or that is gone from the view (lost, or not up yet) is drained with
    its flows moved at once -- nothing there would take them -- and revived
    by the next remote_set when instances are back.  Stand-ins are never
    deleted here: their set is the inventory's (the chain module's)."""
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
    for (svc, h), cur in have.items():
        if (svc, h) not in want and svc in chain_services and cur["state"] == "running":
            ctl.call("drain", instance=cur["instance"], evict=True)
            changes.append("-%s@%s" % (svc, h))
    return changes
