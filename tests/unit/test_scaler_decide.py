"""The scaler's decisions (onvm.scaler.decide), pure: views of the tests'
own, no Redis, no clock."""

from __future__ import annotations

import json
from typing import Any

from onvm.scaler import decide


def view(hosts: dict[str, float], insts: list[tuple[str, str, int, float]]) -> dict[str, Any]:
    """hosts: name -> free cores; insts: (service, host, instance, load)."""
    services: dict[str, list[dict[str, Any]]] = {}
    for svc, h, n, load in insts:
        services.setdefault(svc, []).append({"service": svc, "host": h, "instance": n, "load": load})
    return {"hosts": {h: {"cpus": 4.0, "free_cores": f} for h, f in hosts.items()}, "services": services}


def test_limits_count_the_instances_of_live_hosts_that_declare_the_service() -> None:
    v = view({"a": 2, "b": 2}, [("fw", "a", 0, 0.5), ("fw", "a", 1, 0.5), ("fw", "b", 0, 0.1)])
    declared = {"a": (1, 2), "b": (0, 4), "gone": (0, 4)}
    lim = decide.limits(v, "fw", declared)
    assert lim == {"a": (2, 1, 2), "b": (1, 0, 4)}
    assert decide.eligible(lim) == {"b"}  # a is at its max


def test_scale_out_prefers_this_host_and_says_what_it_decided_on() -> None:
    v = view({"a": 1.5, "b": 3.0}, [("fw", "a", 0, 0.95)])
    d = decide.scale_out(v, "fw", "a", decide.limits(v, "fw", {"a": (1, 4), "b": (0, 4)}))
    (req,) = d.requests
    assert (req.host, req.kind, req.reason, req.event) == ("a", "out", "local", "scale-out-requested")
    assert d.reset and not d.full
    seen = json.loads(dict(req.fields)["view"])
    assert seen == {
        "a": {"free_cores": 1.5, "runs": True, "excluded": False},
        "b": {"free_cores": 3.0, "runs": False, "excluded": False},
    }


def test_scale_out_skips_hosts_at_their_max_or_not_declaring_it_and_says_full_when_none_is_left() -> None:
    v = view({"a": 2.0, "b": 3.0, "c": 5.0}, [("fw", "a", 0, 0.95), ("fw", "a", 1, 0.95)])
    lim = decide.limits(v, "fw", {"a": (1, 2), "b": (0, 4)})  # a at max, c does not declare fw
    (req,) = decide.scale_out(v, "fw", "a", lim).requests
    assert req.host == "b" and req.reason == "most-free"
    full = decide.scale_out(v, "fw", "a", decide.limits(v, "fw", {"a": (1, 2)}))
    assert full.full and full.reset and full.requests == ()


def test_scale_in_drains_the_least_loaded_instance_above_the_min_and_only_its_host_acts() -> None:
    v = view({"a": 2, "b": 2}, [("fw", "a", 0, 0.2), ("fw", "a", 1, 0.1), ("fw", "b", 0, 0.05)])
    lim = decide.limits(v, "fw", {"a": (1, 4), "b": (1, 4)})  # b is at its min: its instance stays
    d = decide.scale_in(v, "fw", "a", lim, cluster_min=2)
    assert d is not None and d.reset
    (req,) = d.requests
    assert (req.host, req.kind, req.instance) == ("a", "in", "1")
    assert decide.scale_in(v, "fw", "b", lim, cluster_min=2) is None  # not b's to drain
    assert decide.scale_in(v, "fw", "a", lim, cluster_min=3) is None  # never under the cluster minimum


def test_replace_places_the_lost_share_one_by_one_and_says_how_many_are_short() -> None:
    v = view({"a": 1.5, "b": 2.5}, [("fw", "a", 0, 0.5)])
    lim = decide.limits(v, "fw", {"a": (1, 2), "b": (0, 1)})
    d = decide.replace(v, "fw", 3, "a", lim, ["c"])
    # a runs fw (local, 1.5 free), then b (most free once a took a core), then a is at its max of 2
    # and b at its max of 1: one short
    assert [(r.host, r.reason) for r in d.requests] == [("a", "local"), ("b", "most-free")]
    assert all(r.event == "replace-requested" and dict(r.fields) == {"lost": "c"} for r in d.requests)
    assert (d.below_min, d.lost, d.reset) == (1, ("c",), False)


def test_reclaim_moves_a_request_off_a_dead_host_or_nowhere() -> None:
    v = view({"a": 0.5, "b": 2.0}, [])
    lim = decide.limits(v, "fw", {"a": (0, 4), "b": (0, 4)})
    assert decide.reclaim(v, "fw", "b", "a", lim) is None  # b is the dead one, a has no room
    assert decide.reclaim(v, "fw", "dead", "a", lim) == "b"
