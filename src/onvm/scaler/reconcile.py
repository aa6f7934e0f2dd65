"""The reconcile step: the host's manager brought in line with the cluster.

Chains the manager lost (it restarted) are put back (restore.py); its
stand-ins for the other hosts' instances follow the view (standins.py: a
lost host's are drained, no new or old flow goes there).  Done when what
they follow from changed -- the manager, the live hosts, who runs what
where, the loads steering goes by -- and every SYNC_EVERY s anyway.  The
view it is given (Agent.scale) has every instance of the fabric peers:
stand-ins only ever stand for those.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils import chains as ch
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlClient, CtlError

from . import restore, standins
from .config import ScalerConfig

log = logging.getLogger("onvm-scaler")

SYNC_EVERY = 5.0  # s between checks of the manager's chains and stand-ins when nothing changed


def shape(
    host: str, view: dict[str, Any], snap: dict[str, Any] | None, peers: Collection[str]
) -> tuple[Any, ...]:
    """What the manager's chains and stand-ins follow from: the manager
    itself, which fabric ``peers`` are live, their instances with their
    loads (rounded as stand-ins carry them)."""
    return (
        snap["mgr_pid"] if snap else 0,
        tuple(sorted(h for h in view["hosts"] if h in peers)),
        tuple(
            (svc, i["host"], round(20 * float(i.get("load", 0.0))))
            for svc, insts in view["services"].items()
            for i in insts
            if i["host"] != host and i["host"] in peers
        ),
    )


class Reconciler:
    def __init__(self, host: str, config: ScalerConfig) -> None:
        self.host = host
        self.config = config
        self.synced: tuple[Any, ...] | None = None
        self.synced_at = -1e9

    def maybe(self, now: float, view: dict[str, Any], snap: dict[str, Any] | None) -> None:
        """Reconcile if what it follows from changed, or SYNC_EVERY passed."""
        s = shape(self.host, view, snap, self.config.fabric)
        if s != self.synced or now - self.synced_at >= SYNC_EVERY:
            self.run(view)
            self.synced, self.synced_at = s, now

    def run(self, view: dict[str, Any]) -> None:
        try:
            with CtlClient(self.host) as ctl:
                have = ch.current(ctl)
                restored = restore.sync(ctl, self.config.chains, have)
                if restored:
                    log.info("chains put back on the manager: %s", " ".join(restored))
                named = {s for c in have.values() for s in c["services"]}
                named |= {s for c in restored for s in self.config.chains[c]["services"]}
                changes = standins.sync(ctl, self.host, view, self.config.fabric, named)
            if changes:
                log.info("stand-ins: %s", " ".join(changes))
        except CtlError as e:
            log.warning("chains and stand-ins: %s", e)
