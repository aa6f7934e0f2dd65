"""Put back what a restarted manager forgot: the chains of this host (the
inventory's, from the scaler's config, exactly as the chain module sets
them) and the services they name.  Stand-ins follow from the chains
(onvm.scaler.standins); NF instances come back by themselves (their
containers' restart policy).  Only chains the manager does not have are
set: one it has otherwise is the chain module's doing (a re-deploy sets the
new chains before the scaler gets its new config), never undone here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils import chains as ch


def sync(ctl: Any, want: Mapping[str, dict[str, Any]], have: Mapping[str, Any]) -> list[str]:
    """Set the chains of ``want`` (normalised) that the manager lacks
    (``have``: its chains, chains.current()); returns their names."""
    changes = {"set": sorted(n for n in want if n not in have), "delete": []}
    if not changes["set"]:
        return []
    known = {s["name"] for s in ctl.call("service_list")["services"]}
    for name in changes["set"]:
        for svc in want[name]["services"]:
            if svc not in known:
                ctl.call("service_add", name=svc)
                known.add(svc)
    ch.apply(ctl, dict(want), changes)
    return list(changes["set"])
