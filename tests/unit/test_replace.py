"""onvm.scaler.replace: which hosts are lost and which of their services
must be started again elsewhere (pure)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from onvm.scaler.replace import LossTracker, missing


def view(hosts: list[str], *insts: tuple[str, str]) -> dict[str, Any]:
    services: dict[str, list[dict[str, Any]]] = {}
    for n, (svc, host) in enumerate(insts):
        services.setdefault(svc, []).append({"service": svc, "host": host, "instance": n})
    return {"hosts": {h: {"free_cores": 1.0} for h in hosts}, "services": services}


WITHOUT_LAB3 = view(["lab1", "lab2"], ("fw", "lab1"), ("slow", "lab2"))


def known() -> LossTracker:
    """A scaler that knows lab1 (fw), lab2 (slow) and lab3 (slow, fwd) alive."""
    t = LossTracker()
    t.joined("lab1", {"fw"})
    t.joined("lab2", {"slow"})
    t.joined("lab3", {"slow", "fwd"})
    return t


def test_a_host_known_and_gone_silent_is_lost_with_what_it_ran() -> None:
    t = known()
    assert t.observe(set(), 0.0) == {}
    assert t.observe({"lab3"}, 0.0) == {"lab3": {"slow", "fwd"}}


def test_a_host_never_known_alive_is_nobodys_loss() -> None:
    """At deploy time the hosts come up one by one: not yet up is not lost,
    and a silent host this scaler never knew alive is nobody's loss."""
    t = known()
    assert t.observe({"lab4"}, 0.0) == {}


def test_a_host_that_returns_is_no_longer_lost() -> None:
    t = known()
    t.observe({"lab3"}, 0.0)
    assert t.suspects(0.0) == ["lab3"]  # asked about until it is back
    assert t.observe(set(), 0.0) == {}
    assert t.suspects(0.0) == []


def test_a_lost_host_is_remembered_with_what_it_last_ran() -> None:
    t = known()
    t.joined("lab3", {"fwd"})  # its membership entry: it stopped running slow
    assert t.observe({"lab3"}, 0.0) == {"lab3": {"fwd"}}


def test_a_loss_is_checked_for_a_clean_leave_once_until_the_host_returns() -> None:
    t = known()
    lost = t.observe({"lab3"}, 0.0)
    assert t.unchecked(lost) == ["lab3"]
    t.confirm("lab3")
    assert t.unchecked(t.observe({"lab3"}, 0.0)) == []
    # back, then gone again: a new loss, checked again
    t.observe(set(), 0.0)
    assert t.unchecked(t.observe({"lab3"}, 0.0)) == ["lab3"]


def test_a_host_that_left_cleanly_is_forgotten() -> None:
    t = known()
    t.observe({"lab3"}, 0.0)
    t.forget("lab3")
    assert t.observe({"lab3"}, 0.0) == {}
    assert t.suspects(0.0) == []


def test_after_an_outage_a_host_still_missing_when_the_grace_ends_is_lost() -> None:
    """Redis restarted empty: the hosts heartbeat into it one by one.  lab2
    is back within the grace period (not lost); lab3 died during the outage
    and is in no registry: once the grace has run out every known host is
    asked about once, and lab3, still missing, is lost."""
    t = LossTracker(grace=6.0)
    t.joined("lab1", {"fw"})
    t.joined("lab2", {"slow"})
    t.joined("lab3", {"slow", "fwd"})
    t.outage()
    assert t.suspects(100.0) == []  # the grace starts with the first check after
    assert t.observe({"lab2", "lab3"}, 100.0) == {}
    assert t.suspects(103.0) == ["lab2", "lab3"]  # silent at the last check: asked about
    assert t.observe({"lab3"}, 103.0) == {}
    assert t.suspects(105.9) == ["lab3"]
    assert t.observe({"lab3"}, 105.9) == {}
    assert t.suspects(106.0) == ["lab1", "lab2", "lab3"]  # everyone, once
    assert t.observe({"lab3"}, 106.0) == {"lab3": {"slow", "fwd"}}
    assert t.suspects(107.0) == ["lab3"]


def test_an_outage_makes_a_confirmed_loss_be_checked_again() -> None:
    """A restarted Redis has forgotten who left cleanly: ask once more."""
    t = LossTracker(grace=1.0)
    t.joined("lab3", {"fwd"})
    assert t.unchecked(t.observe({"lab3"}, 0.0)) == ["lab3"]
    t.confirm("lab3")
    assert t.unchecked(t.observe({"lab3"}, 0.5)) == []
    t.outage()
    assert t.observe({"lab3"}, 10.0) == {}
    assert t.unchecked(t.observe({"lab3"}, 11.0)) == ["lab3"]


def test_only_services_under_their_minimum_are_started_again() -> None:
    lost = {"lab3": {"slow", "fwd"}}
    # slow: 2 in the cluster, 1 left; fwd: none left; fw: not the lost host's
    assert missing(WITHOUT_LAB3, lost, {"fw": 3, "slow": 2, "fwd": 1}) == {"slow": 1, "fwd": 1}
    assert missing(WITHOUT_LAB3, lost, {"slow": 1, "fwd": 0}) == {}


def test_nothing_is_missing_without_a_loss() -> None:
    assert missing(WITHOUT_LAB3, {}, {"slow": 5}) == {}


@given(left=st.integers(0, 6), minimum=st.integers(0, 6))
def test_what_is_missing_brings_the_count_back_to_the_minimum(left: int, minimum: int) -> None:
    v = view(["lab1"], *[("slow", "lab1")] * left)
    got = missing(v, {"lab9": {"slow"}}, {"slow": minimum}).get("slow", 0)
    assert got == max(0, minimum - left)
