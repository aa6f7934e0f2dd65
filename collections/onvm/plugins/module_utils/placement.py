# SPDX-License-Identifier: BSD-3-Clause
"""Where the auto-scaler puts a new instance of a service: a pure function
of the global view (``global_view.view()``), with no I/O.

Among the alive hosts (those in ``view["hosts"]``) that are not excluded
and have room (``free_cores >= need``), prefer:
  1. the local host, when it already runs the service    -> "local"
  2. else a host that runs the service, most free cores  -> "runs-service"
  3. else any host, most free cores                       -> "most-free"
  4. else nobody: the cluster is full                     -> "full"
Ties on free cores go to the local host, then to the first host name.
A host entry whose free_cores is missing or not a finite number counts as
0 free; a host listed under a service but absent from ``view["hosts"]``
is not alive and is never chosen.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

LOCAL = "local"
RUNS_SERVICE = "runs-service"
MOST_FREE = "most-free"
FULL = "full"


@dataclass(frozen=True)
class Placement:
    host: str | None  # None: the cluster is full
    reason: str  # LOCAL | RUNS_SERVICE | MOST_FREE | FULL
    free_cores: float  # free cores of the chosen host (0.0 when full)


def _hosts(view: Mapping[str, Any]) -> Mapping[Any, Any]:
    hosts = view.get("hosts")
    return hosts if isinstance(hosts, Mapping) else {}


def _free(info: Any) -> float:
    """Free cores of one host entry; 0.0 unless a finite number."""
    if not isinstance(info, Mapping):
        return 0.0
    v = info.get("free_cores")
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return 0.0
    return float(v)


def free_cores(view: Mapping[str, Any], host: str) -> float:
    """Free cores of ``host`` in ``view`` (0.0 when not alive or unknown)."""
    return _free(_hosts(view).get(host))


def runners(view: Mapping[str, Any], service: str) -> set[str]:
    """Hosts with at least one instance of ``service`` (alive or not)."""
    services = view.get("services")
    insts = services.get(service) if isinstance(services, Mapping) else None
    if not isinstance(insts, list | tuple):
        return set()
    out: set[str] = set()
    for inst in insts:
        if isinstance(inst, Mapping):
            h = inst.get("host")
            if isinstance(h, str):
                out.add(h)
    return out


def _best(
    entries: Iterable[tuple[Any, Any]], local: str, need: float, excluded: Collection[str]
) -> tuple[str | None, float]:
    """Of (host, entry) pairs of alive hosts, the non-excluded one with room
    and the most free cores (ties: ``local``, then the smallest name)."""
    best: str | None = None
    best_free = 0.0
    for h, info in entries:
        if not isinstance(h, str) or h in excluded:
            continue
        f = _free(info)
        if not f >= need:
            continue
        if best is None or f > best_free or (f == best_free and best != local and (h == local or h < best)):
            best, best_free = h, f
    return best, best_free


def place(
    view: Mapping[str, Any],
    service: str,
    local: str,
    need: float = 1.0,
    exclude: Collection[str] = (),
) -> Placement:
    """Choose the host for one more instance of ``service``, decided on
    ``local``; ``need`` is the cores it takes, ``exclude`` hosts never to
    choose (e.g. one that just died)."""
    hosts = _hosts(view)
    if isinstance(exclude, str):  # one host name, not its letters
        exclude = (exclude,)
    excluded = exclude if isinstance(exclude, set | frozenset) else frozenset(exclude)
    running = runners(view, service)
    if local in running and local not in excluded and local in hosts:
        f = _free(hosts[local])
        if f >= need:
            return Placement(local, LOCAL, f)
    host, f = _best(((h, hosts[h]) for h in running if h in hosts), local, need, excluded)
    if host is not None:
        return Placement(host, RUNS_SERVICE, f)
    host, f = _best(hosts.items(), local, need, excluded)
    if host is not None:
        return Placement(host, MOST_FREE, f)
    return Placement(None, FULL, 0.0)
