"""The auto-scaler's placement policy: explicit cases and properties."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.onvm.nfv.plugins.module_utils import placement as pl
from ansible_collections.onvm.nfv.plugins.module_utils.placement import Placement, place


def mkview(hosts: dict[str, Any], services: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """A view as global_view.view() returns it; ``hosts`` maps a name to its
    free cores (or to a whole entry), ``services`` a service to the hosts of
    its instances, in order."""
    return {
        "hosts": {
            h: (v if isinstance(v, dict) else {"cpus": 8.0, "free_cores": v, "updated_ms": 1.0})
            for h, v in hosts.items()
        },
        "services": {
            s: [{"host": h, "instance": i, "service": s, "busy": 0.5} for i, h in enumerate(on, 1)]
            for s, on in (services or {}).items()
        },
    }


# -- each branch ----------------------------------------------------------------------------------


def test_local_preferred_even_when_a_remote_runner_has_more_room() -> None:
    v = mkview({"a": 1.0, "b": 7.0, "c": 8.0}, {"fw": ["a", "b"]})
    assert place(v, "fw", "a") == Placement("a", "local", 1.0)


def test_local_without_room_goes_to_the_runner_with_most_free_cores() -> None:
    v = mkview({"a": 0.5, "b": 3.0, "c": 5.0, "d": 8.0}, {"fw": ["a", "b", "c"]})
    assert place(v, "fw", "a") == Placement("c", "runs-service", 5.0)


def test_runner_preferred_over_non_runner_with_more_room() -> None:
    v = mkview({"a": 8.0, "b": 1.0}, {"fw": ["b"]})
    assert place(v, "fw", "a") == Placement("b", "runs-service", 1.0)


def test_runners_tie_breaks_on_host_name() -> None:
    v = mkview({"a": 0.0, "c": 4.0, "b": 4.0, "d": 4.0}, {"fw": ["d", "c", "b"]})
    assert place(v, "fw", "a") == Placement("b", "runs-service", 4.0)


def test_no_runner_most_free_picks_local_on_tie() -> None:
    v = mkview({"a": 4.0, "b": 4.0, "c": 2.0}, {"nat": ["c"]})
    assert place(v, "fw", "b") == Placement("b", "most-free", 4.0)


def test_no_runner_most_free_picks_host_name_on_tie_without_local() -> None:
    v = mkview({"c": 4.0, "b": 4.0, "a": 2.0})
    assert place(v, "fw", "a") == Placement("b", "most-free", 4.0)


def test_most_free_when_every_runner_is_full() -> None:
    v = mkview({"a": 0.0, "b": 0.75, "c": 2.0, "d": 3.0}, {"fw": ["a", "b"]})
    assert place(v, "fw", "a") == Placement("d", "most-free", 3.0)


def test_full_when_nobody_has_room() -> None:
    v = mkview({"a": 0.0, "b": 0.75, "c": 0.5}, {"fw": ["a", "b"]})
    assert place(v, "fw", "a") == Placement(None, "full", 0.0)


def test_empty_view_is_full() -> None:
    assert place({"hosts": {}, "services": {}}, "fw", "a") == Placement(None, "full", 0.0)
    assert place({}, "fw", "a") == Placement(None, "full", 0.0)


def test_exclude_is_never_chosen() -> None:
    v = mkview({"a": 4.0, "b": 3.0, "c": 8.0}, {"fw": ["a", "b"]})
    assert place(v, "fw", "a", exclude={"a"}) == Placement("b", "runs-service", 3.0)
    assert place(v, "fw", "a", exclude=["a", "b"]) == Placement("c", "most-free", 8.0)
    assert place(v, "fw", "a", exclude=("a", "b", "c")) == Placement(None, "full", 0.0)


def test_exclude_as_a_single_name_is_one_host() -> None:
    v = mkview({"a": 4.0, "b": 3.0}, {"fw": ["a", "b"]})
    assert place(v, "fw", "a", exclude="a") == Placement("b", "runs-service", 3.0)


def test_dead_host_ignored() -> None:
    # "z" still has instances listed but no longer heartbeats: not in hosts
    v = mkview({"a": 0.0, "b": 2.0}, {"fw": ["z", "z", "a"]})
    assert place(v, "fw", "z") == Placement("b", "most-free", 2.0)
    assert place(v, "fw", "a") == Placement("b", "most-free", 2.0)


def test_need_more_than_one_core() -> None:
    v = mkview({"a": 1.5, "b": 1.75, "c": 3.0}, {"fw": ["a", "b"]})
    assert place(v, "fw", "a", need=1.5) == Placement("a", "local", 1.5)
    assert place(v, "fw", "a", need=1.75) == Placement("b", "runs-service", 1.75)
    assert place(v, "fw", "a", need=2.0) == Placement("c", "most-free", 3.0)
    assert place(v, "fw", "a", need=3.5) == Placement(None, "full", 0.0)


def test_fractional_need() -> None:
    v = mkview({"a": 0.5, "b": 0.25}, {"fw": ["b"]})
    assert place(v, "fw", "a", need=0.5) == Placement("a", "most-free", 0.5)
    assert place(v, "fw", "a", need=0.25) == Placement("b", "runs-service", 0.25)


@pytest.mark.parametrize(
    "entry",
    [
        {"cpus": 8.0},
        {"cpus": 8.0, "free_cores": "4"},
        {"cpus": 8.0, "free_cores": None},
        {"cpus": 8.0, "free_cores": math.nan},
        {"cpus": 8.0, "free_cores": math.inf},
        {"cpus": 8.0, "free_cores": True},
        {"cpus": 8.0, "free_cores": [4.0]},
        {},
        None,
        "free",
        4.0,
    ],
)
def test_odd_host_entry_counts_as_no_free_core(entry: Any) -> None:
    v = {"hosts": {"a": entry, "b": {"free_cores": 1}}, "services": {"fw": [{"host": "a"}]}}
    assert place(v, "fw", "a") == Placement("b", "most-free", 1.0)
    assert place(v, "fw", "a", need=0.0) == Placement("a", "local", 0.0)
    assert pl.free_cores(v, "a") == 0.0


def test_int_free_cores_reported_as_float() -> None:
    p = place({"hosts": {"a": {"free_cores": 2}}}, "fw", "a")
    assert p == Placement("a", "most-free", 2.0)
    assert isinstance(p.free_cores, float)


def test_odd_service_entries_are_skipped() -> None:
    v: dict[str, Any] = {
        "hosts": {"a": {"free_cores": 1.0}, "b": {"free_cores": 2.0}, "c": {"free_cores": 3.0}},
        "services": {"fw": [None, "a", {"instance": 1}, {"host": ["a"]}, {"host": 3}, {"host": "b"}]},
    }
    assert place(v, "fw", "a") == Placement("b", "runs-service", 2.0)
    v["services"]["fw"] = "b"
    assert place(v, "fw", "a") == Placement("c", "most-free", 3.0)
    v["services"] = None
    assert place(v, "fw", "a") == Placement("c", "most-free", 3.0)
    v["hosts"] = ["a", "b"]
    assert place(v, "fw", "a") == Placement(None, "full", 0.0)


def test_non_string_host_names_are_skipped() -> None:
    v = {"hosts": {1: {"free_cores": 8.0}, ("x",): {"free_cores": 8.0}, "b": {"free_cores": 1.0}}}
    assert place(v, "fw", "a") == Placement("b", "most-free", 1.0)


def test_free_cores_helper() -> None:
    v = mkview({"a": 2.5}, {"fw": ["z"]})
    assert pl.free_cores(v, "a") == 2.5
    assert pl.free_cores(v, "z") == 0.0
    assert pl.free_cores({}, "a") == 0.0


def test_runners_helper() -> None:
    v = mkview({"a": 2.5}, {"fw": ["z", "a", "z"], "nat": ["b"]})
    assert pl.runners(v, "fw") == {"a", "z"}
    assert pl.runners(v, "lb") == set()


def test_only_the_service_s_own_instances_are_read() -> None:
    class Boom(dict[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise AssertionError("scanned all services")

        def values(self) -> Any:
            raise AssertionError("scanned all services")

        def items(self) -> Any:
            raise AssertionError("scanned all services")

        def __iter__(self) -> Any:
            raise AssertionError("scanned all services")

    v = mkview({"a": 0.0, "b": 2.0}, {"fw": ["b"], "nat": ["a"]})
    v["services"] = Boom(v["services"])
    assert place(v, "fw", "a") == Placement("b", "runs-service", 2.0)


def test_placement_is_frozen() -> None:
    p: Any = Placement("a", "local", 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.host = "b"


# -- properties -----------------------------------------------------------------------------------

NAMES = ["h%02d" % i for i in range(40)]  # a pool wider than the view: some names are dead hosts
SERVICES = ["fw", "nat", "lb", "dpi"]
NEEDS = [0.25, 0.5, 1.0, 1.0, 1.0, 1.5, 2.0, 3.0, 8.0]

free_st = st.integers(min_value=0, max_value=32).map(lambda q: q / 4)


@st.composite
def views(draw: st.DrawFn) -> dict[str, Any]:
    alive = draw(st.lists(st.sampled_from(NAMES), max_size=30, unique=True))
    hosts = {
        h: {"cpus": 8.0, "free_cores": draw(free_st), "updated_ms": float(n)} for n, h in enumerate(alive)
    }
    services: dict[str, list[dict[str, Any]]] = {}
    for s in draw(st.lists(st.sampled_from(SERVICES), unique=True)):
        on = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=12))
        services[s] = [
            {"host": h, "instance": i, "service": s, "busy": 0.5, "state": "running"}
            for i, h in enumerate(sorted(on), 1)
        ]
    return {"hosts": hosts, "services": services}


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], str, str, float, frozenset[str]]:
    v = draw(views())
    alive = sorted(v["hosts"])
    # the local host is mostly alive (the daemon runs there), sometimes not
    local_alive: bool = draw(st.booleans())
    pool = alive if alive and local_alive else NAMES
    local = draw(st.sampled_from(pool))
    service = draw(st.sampled_from(SERVICES))
    need = draw(st.sampled_from(NEEDS))
    exclude = frozenset(draw(st.lists(st.sampled_from(NAMES), max_size=5)))
    return v, service, local, need, exclude


def runs(v: dict[str, Any], service: str) -> set[str]:
    return {i["host"] for i in v["services"].get(service, [])}


def qualifying(v: dict[str, Any], need: float, exclude: frozenset[str]) -> dict[str, float]:
    return {h: e["free_cores"] for h, e in v["hosts"].items() if h not in exclude and e["free_cores"] >= need}


def oracle(v: dict[str, Any], service: str, local: str, need: float, exclude: frozenset[str]) -> Placement:
    """The policy written the slow, obvious way: sort everything."""
    ok = qualifying(v, need, exclude)
    if local in ok and local in runs(v, service):
        return Placement(local, "local", ok[local])
    for reason, pool in (("runs-service", runs(v, service) & ok.keys()), ("most-free", set(ok))):
        if pool:
            h = min(pool, key=lambda h: (-ok[h], h != local, h))
            return Placement(h, reason, ok[h])
    return Placement(None, "full", 0.0)


Case = tuple[dict[str, Any], str, str, float, frozenset[str]]


@given(cases())
def test_chosen_host_has_room_is_alive_and_not_excluded(case: Case) -> None:
    v, service, local, need, exclude = case
    p = place(v, service, local, need, exclude)
    if p.host is not None:
        assert p.host in v["hosts"]
        assert p.host not in exclude
        assert p.free_cores >= need
        assert p.free_cores == v["hosts"][p.host]["free_cores"]
    else:
        assert p == Placement(None, "full", 0.0)


@given(cases())
def test_local_runner_with_room_is_chosen(case: Case) -> None:
    v, service, local, need, exclude = case
    p = place(v, service, local, need, exclude)
    if local in qualifying(v, need, exclude) and local in runs(v, service):
        assert p == Placement(local, "local", v["hosts"][local]["free_cores"])
    else:
        assert p.reason != "local"


@given(cases())
def test_runs_service_is_a_runner_with_the_most_free_cores(case: Case) -> None:
    v, service, local, need, exclude = case
    p = place(v, service, local, need, exclude)
    ok = qualifying(v, need, exclude)
    qualifying_runners = runs(v, service) & ok.keys()
    if p.reason == "runs-service":
        assert p.host in qualifying_runners
        assert all(ok[h] <= p.free_cores for h in qualifying_runners)
    if qualifying_runners:
        assert p.reason in ("local", "runs-service")
    if p.reason == "most-free":
        assert not qualifying_runners
        assert all(f <= p.free_cores for f in ok.values())


@given(cases())
def test_full_iff_no_alive_non_excluded_host_has_room(case: Case) -> None:
    v, service, local, need, exclude = case
    p = place(v, service, local, need, exclude)
    assert (p.reason == "full") == (not qualifying(v, need, exclude))
    assert (p.host is None) == (p.reason == "full")


@given(cases())
def test_agrees_with_the_obvious_implementation(case: Case) -> None:
    v, service, local, need, exclude = case
    assert place(v, service, local, need, exclude) == oracle(v, service, local, need, exclude)


@given(cases())
def test_deterministic_and_does_not_mutate(case: Case) -> None:
    v, service, local, need, exclude = case
    before = copy.deepcopy(v)
    p = place(v, service, local, need, exclude)
    assert v == before
    assert place(v, service, local, need, exclude) == p
    assert place(copy.deepcopy(v), service, local, need, set(exclude)) == p


@settings(max_examples=50)
@given(cases(), st.randoms(use_true_random=False))
def test_order_of_hosts_and_instances_does_not_matter(case: Case, rnd: random.Random) -> None:
    v, service, local, need, exclude = case
    hosts = list(v["hosts"].items())
    rnd.shuffle(hosts)
    services = {s: rnd.sample(insts, len(insts)) for s, insts in v["services"].items()}
    shuffled = {"hosts": dict(hosts), "services": services}
    assert place(shuffled, service, local, need, exclude) == place(v, service, local, need, exclude)
