"""Reconciling NF containers with a range (``most``: the scaler owns the
instances between want and most), and the spec of instance n."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.onvm.nfv.plugins.module_utils.nf_container import (
    NFSpec,
    ServiceConf,
    instance_name,
    plan,
    spec_for,
)


def fp(i: int) -> str:
    return "cfg"


def names(*idx: int) -> list[str]:
    return [instance_name("h", "svc", i) for i in idx]


def running(*idx: int) -> dict[str, tuple[bool, str]]:
    return {n: (True, "cfg") for n in names(*idx)}


# ---- plan(most=None) is plan(most=want) -------------------------------------------


@given(
    st.dictionaries(st.integers(0, 12), st.tuples(st.booleans(), st.sampled_from(["cfg", "old"]))),
    st.integers(0, 14),
)
def test_most_none_or_at_most_want_is_exact_reconciliation(
    state: dict[int, tuple[bool, str]], want: int
) -> None:
    existing = {instance_name("h", "svc", i): v for i, v in state.items()}
    base = plan(existing, want, fp)
    assert plan(existing, want, fp, most=want) == base
    for most in (0, want - 1, want // 2):
        assert plan(existing, want, fp, most=most) == base  # most < want is taken as want
    assert len(base.keep) + len(base.start) == want


def test_without_most_extra_instances_go_highest_index_first() -> None:
    p = plan(running(0, 1, 2, 3, 10), 2, fp)
    assert p.keep == names(0, 1) and p.remove == names(2, 3, 10) and p.start == []


# ---- the range between want and most ------------------------------------------------


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_any_count_between_want_and_most_is_left_alone(count: int) -> None:
    existing = running(*range(count))
    p = plan(existing, 2, fp, most=5)
    assert p.start == [] and p.remove == []
    assert p.keep == names(*range(count))


def test_the_scalers_instances_need_not_be_contiguous() -> None:
    p = plan(running(0, 4, 7), 1, fp, most=3)
    assert (p.start, p.remove, p.keep) == ([], [], names(0, 4, 7))


def test_above_most_the_highest_indexes_go() -> None:
    p = plan(running(0, 1, 2, 5, 6, 9), 2, fp, most=4)
    assert p.keep == names(0, 1, 2, 5)
    assert p.remove == names(6, 9)
    assert p.start == []


def test_below_want_the_lowest_free_indexes_start() -> None:
    p = plan(running(1, 3), 4, fp, most=6)
    assert p.keep == names(1, 3) and p.start == [0, 2] and p.remove == []


def test_stopped_and_reconfigured_instances_are_replaced_within_the_range() -> None:
    existing = {
        **running(0, 3),
        names(1)[0]: (False, "cfg"),  # exited
        names(2)[0]: (True, "old"),  # another configuration
    }
    p = plan(existing, 3, fp, most=5)
    assert p.keep == names(0, 3)
    assert p.remove == names(1, 2)
    assert p.start == [1]  # back to want: the lowest index not kept


def test_above_want_stopped_ones_go_and_reconfigured_ones_are_rolled() -> None:
    """The scaler's instance of an old configuration is brought to the new
    one (a replacement at a new index, then it goes); a stopped one above
    want is not restarted."""
    existing = {**running(0, 1, 2), names(3)[0]: (False, "cfg"), names(4)[0]: (True, "old")}
    p = plan(existing, 2, fp, most=5)
    assert p.keep == names(0, 1, 2) and p.remove == names(3, 4) and p.start == [3]
    assert p.stale == names(4)


def test_a_reconfigured_instance_is_replaced_at_an_index_no_running_one_has() -> None:
    p = plan({names(0)[0]: (True, "old")}, 1, fp)
    assert (p.keep, p.start, p.remove, p.stale) == ([], [1], names(0), names(0))


def test_the_fingerprint_is_per_index() -> None:
    def by_index(i: int) -> str:
        return "odd" if i % 2 else "even"

    existing = {names(0)[0]: (True, "even"), names(1)[0]: (True, "even"), names(2)[0]: (True, "even")}
    p = plan(existing, 1, by_index, most=3)
    # 1 carries the even indexes' configuration: rolled onto index 3 (odd)
    assert p.keep == names(0, 2) and p.remove == names(1) and p.start == [3] and p.stale == names(1)


def test_want_zero_with_a_range_keeps_what_runs() -> None:
    assert plan(running(0, 1), 0, fp, most=2).keep == names(0, 1)
    assert plan(running(0, 1), 0, fp, most=1).remove == names(1)
    assert plan({}, 0, fp, most=3) == plan({}, 0, fp)


@given(
    st.dictionaries(st.integers(0, 12), st.tuples(st.booleans(), st.sampled_from(["cfg", "old"]))),
    st.integers(0, 8),
    st.integers(0, 10),
)
def test_plan_with_a_range_ends_between_want_and_most_good_instances(
    state: dict[int, tuple[bool, str]], want: int, most: int
) -> None:
    existing = {instance_name("h", "svc", i): v for i, v in state.items()}
    p = plan(existing, want, fp, most=most)
    top = max(want, most)
    good = sorted(
        (n for n, v in existing.items() if v == (True, "cfg")), key=lambda n: int(n.rsplit("-")[-1])
    )
    stale = {n for n, v in existing.items() if v == (True, "old")}
    # every good one is kept up to the top; bad ones always go
    assert p.keep == good[:top]
    assert set(p.remove) == set(existing) - set(p.keep)
    assert set(p.keep).isdisjoint(p.remove)
    assert set(p.stale) == stale
    # as many started as it takes to reach want, or to replace the running
    # ones of another configuration (up to the top); never over the index of
    # a running container (the replacement starts before the stale one goes)
    assert len(p.keep) + len(p.start) == max(want, min(len(good) + len(stale), top))
    assert not set(names(*p.start)) & (set(p.keep) | stale)
    assert len(set(p.start)) == len(p.start)
    # within the range nothing changes for a service with only good instances
    if all(v == (True, "cfg") for v in existing.values()) and want <= len(existing) <= top:
        assert (p.start, p.remove) == ([], [])


# ---- spec_for and the fingerprint ------------------------------------------------------


CONF = ServiceConf(
    image="onvm/firewall:0.1.0",
    args=["--rules", "/etc/onvm/fw.rules"],
    files={"/srv/fw.rules": "/etc/onvm/fw.rules"},
    cores=[4, 5, 6],
    shared_core=True,
)


def test_spec_for_names_the_instance_and_copies_the_conf() -> None:
    s = spec_for("lab1", "fw", CONF, 7)
    assert s.name == "onvm-lab1-fw-7" == instance_name("lab1", "fw", 7)
    assert (s.host, s.service, s.image) == ("lab1", "fw", "onvm/firewall:0.1.0")
    assert s.args == CONF.args and s.args is not CONF.args
    assert s.files == CONF.files and s.files is not CONF.files
    assert s.shared_core is True
    assert (s.runtime_dir, s.huge_dir) == (CONF.runtime_dir, CONF.huge_dir)
    assert s.labels == {}


@pytest.mark.parametrize(("index", "core"), [(0, 4), (1, 5), (2, 6), (3, 4), (4, 5), (11, 6)])
def test_spec_for_takes_the_cores_in_turn(index: int, core: int) -> None:
    assert spec_for("lab1", "fw", CONF, index).core == core


def test_spec_for_without_cores_pins_nothing() -> None:
    s = spec_for("lab1", "fw", ServiceConf(image="i"), 3)
    assert s.core is None and "--core" not in s.command()


def test_spec_for_is_the_same_for_the_module_and_the_scaler() -> None:
    assert spec_for("lab1", "fw", CONF, 2) == spec_for("lab1", "fw", dataclasses.replace(CONF), 2)
    assert spec_for("lab1", "fw", CONF, 2).fingerprint() == spec_for("lab1", "fw", CONF, 5).fingerprint()


def test_the_fingerprint_ignores_name_and_labels() -> None:
    s = spec_for("lab1", "fw", CONF, 0)
    same = dataclasses.replace(s, name="anything", labels={"org.onvm.request": "r-17"})
    assert same.fingerprint() == s.fingerprint()


@pytest.mark.parametrize(
    "change",
    [
        {"args": ["--rules", "/etc/onvm/other.rules"]},
        {"args": []},
        {"image": "onvm/firewall:0.2.0"},
        {"core": 5},
        {"core": None},
        {"shared_core": False},
        {"files": {}},
        {"host": "lab2"},
        {"service": "fw2"},
    ],
)
def test_the_fingerprint_changes_with_the_configuration(change: dict[str, object]) -> None:
    s = spec_for("lab1", "fw", CONF, 0)
    assert dataclasses.replace(s, **change).fingerprint() != s.fingerprint()


def test_the_fingerprint_is_stable_text() -> None:
    s = NFSpec(host="h", service="svc", image="i", name="n")
    assert s.fingerprint() == NFSpec(host="h", service="svc", image="i", name="m").fingerprint()
    assert len(s.fingerprint()) == 16 and int(s.fingerprint(), 16) >= 0
