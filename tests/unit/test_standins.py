"""onvm.scaler.standins.wanted: which stand-ins for other hosts' instances
this host's manager needs, and the load each carries (pure)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from onvm.scaler.standins import wanted

FABRIC = {"lab2": "port1", "lab3": "port2"}


def inst(service: str, host: str, load: float, n: int = 0) -> dict[str, Any]:
    return {"service": service, "instance": n, "host": host, "load": load, "drop_pps": 0.0}


def view(hosts: list[str], *insts: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, list[dict[str, Any]]] = {}
    for i in insts:
        services.setdefault(i["service"], []).append(i)
    return {"hosts": {h: {"cpus": 4.0, "free_cores": 1.0} for h in hosts}, "services": services}


def test_a_service_of_a_local_chain_run_by_a_peer_gets_a_stand_in() -> None:
    v = view(["lab1", "lab2"], inst("fw", "lab1", 0.9), inst("fw", "lab2", 0.4))
    assert wanted("lab1", {"fw"}, v, FABRIC) == {("fw", "lab2"): 40}


def test_the_local_host_is_never_included() -> None:
    v = view(["lab1"], inst("fw", "lab1", 0.9))
    assert wanted("lab1", {"fw"}, v, {"lab1": "port0", **FABRIC}) == {}


def test_only_services_of_local_chains() -> None:
    v = view(["lab1", "lab2"], inst("fw", "lab2", 0.5), inst("nat", "lab2", 0.5))
    assert wanted("lab1", {"fw"}, v, FABRIC) == {("fw", "lab2"): 50}
    assert wanted("lab1", set(), v, FABRIC) == {}


def test_only_hosts_that_are_alive() -> None:
    v = view(["lab1", "lab2"], inst("fw", "lab2", 0.5), inst("fw", "lab3", 0.1))
    assert wanted("lab1", {"fw"}, v, FABRIC) == {("fw", "lab2"): 50}


def test_only_hosts_this_one_has_a_fabric_port_to() -> None:
    v = view(["lab1", "lab2", "lab4"], inst("fw", "lab2", 0.5), inst("fw", "lab4", 0.1))
    assert wanted("lab1", {"fw"}, v, FABRIC) == {("fw", "lab2"): 50}
    assert wanted("lab1", {"fw"}, v, {}) == {}


def test_load_is_100_less_the_summed_spare_of_the_hosts_instances() -> None:
    v = view(
        ["lab1", "lab2", "lab3"],
        inst("fw", "lab2", 0.9, 0),
        inst("fw", "lab2", 0.8, 1),  # spare 10 + 20
        inst("fw", "lab3", 0.876, 0),
        inst("nat", "lab3", 0.004, 0),
    )
    assert wanted("lab1", {"fw", "nat"}, v, FABRIC) == {
        ("fw", "lab2"): 70,
        ("fw", "lab3"): 88,
        ("nat", "lab3"): 0,
    }


def test_a_remote_scale_out_makes_the_stand_in_as_roomy_as_an_idle_instance() -> None:
    """One full and one just-started instance: as much room as one idle
    instance, not the mean (50)."""
    v = view(["lab2"], inst("fw", "lab2", 1.0, 0), inst("fw", "lab2", 0.0, 1))
    assert wanted("lab1", {"fw"}, v, FABRIC) == {("fw", "lab2"): 0}
    v = view(["lab2"], inst("fw", "lab2", 1.0, 0), inst("fw", "lab2", 1.0, 1))
    assert wanted("lab1", {"fw"}, v, FABRIC) == {("fw", "lab2"): 100}


def test_load_is_clamped_to_0_100() -> None:
    v = view(["lab2", "lab3"], inst("fw", "lab2", 1.7), inst("fw", "lab3", -0.3))
    assert wanted("lab1", {"fw"}, v, FABRIC) == {("fw", "lab2"): 100, ("fw", "lab3"): 0}


def test_an_instance_without_a_load_counts_as_idle() -> None:
    v = view(["lab2"], {"service": "fw", "host": "lab2", "instance": 0}, inst("fw", "lab2", 0.95, 1))
    assert wanted("lab1", {"fw"}, v, FABRIC) == {("fw", "lab2"): 0}
    v = view(["lab2"], {"service": "fw", "host": "lab2", "instance": 0})
    assert wanted("lab1", {"fw"}, v, FABRIC) == {("fw", "lab2"): 0}


def test_an_empty_or_partial_view_wants_nothing() -> None:
    assert wanted("lab1", {"fw"}, {}, FABRIC) == {}
    assert wanted("lab1", {"fw"}, {"hosts": None, "services": None}, FABRIC) == {}
    assert wanted("lab1", {"fw"}, {"services": {"fw": [inst("fw", "lab2", 0.5)]}}, FABRIC) == {}
    assert wanted("lab1", {"fw"}, view(["lab2"]), FABRIC) == {}


HOSTS = ["lab1", "lab2", "lab3", "lab4"]


@given(
    st.lists(
        st.tuples(st.sampled_from(["fw", "nat", "dpi"]), st.sampled_from(HOSTS), st.floats(-1, 3)),
        max_size=20,
    ),
    st.sets(st.sampled_from(HOSTS)),
    st.sets(st.sampled_from(["fw", "nat", "dpi"])),
    st.dictionaries(st.sampled_from(HOSTS), st.sampled_from(["port0", "port1"])),
)
def test_wanted_is_exactly_the_alive_fabric_peers_running_local_chain_services(
    insts: list[tuple[str, str, float]], alive: set[str], chain_services: set[str], fabric: dict[str, str]
) -> None:
    v = view(sorted(alive), *(inst(s, h, load, n) for n, (s, h, load) in enumerate(insts)))
    got = wanted("lab1", chain_services, v, fabric)
    expect = {
        (s, h) for s, h, _ in insts if s in chain_services and h in alive and h in fabric and h != "lab1"
    }
    assert set(got) == expect
    for (s, h), pct in got.items():
        loads = [load for s2, h2, load in insts if (s2, h2) == (s, h)]
        spare = sum(100 - max(0.0, min(100.0, 100 * load)) for load in loads)
        assert 0 <= pct <= 100
        assert pct == max(0, min(100, round(100 - spare)))
        # never less room than its roomiest instance, never more than one idle one
        assert pct <= 100 - max(100 - max(0.0, min(100.0, 100 * load)) for load in loads) + 0.5
