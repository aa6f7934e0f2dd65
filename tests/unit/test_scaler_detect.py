"""onvm.scaler.detect: when a service is overloaded on a host, and when the
cluster has an instance of it too many (pure: explicit times, no clock)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onvm.scaler.config import Policy
from onvm.scaler.detect import Detector, at_limit

# exact binary fractions throughout: no rounding at the window's edges
POLICY = Policy(high=0.75, low=0.25, window=1.0, in_window=4.0)
STEP = 0.125


def inst(service: str, n: int, load: float, drop: float = 0.0, host: str = "h1") -> dict[str, Any]:
    return {
        "service": service,
        "instance": n,
        "host": host,
        "state": "running",
        "load": load,
        "drop_pps": drop,
        "ring_drop_pps": drop,
        "rx_pps": 1000.0,
    }


def view_of(insts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    services: dict[str, list[dict[str, Any]]] = {}
    hosts: dict[str, Any] = {}
    for i in insts:
        services.setdefault(i["service"], []).append(i)
        hosts[i["host"]] = {"cpus": 4.0, "free_cores": 2.0}
    return {"hosts": hosts, "services": services}


def feed(
    det: Detector, start: float, stop: float, local: Sequence[dict[str, Any]], view: Any = None
) -> float:
    """Observe the same sample every STEP from start to stop (both included); returns stop."""
    k = 0
    while start + k * STEP <= stop:
        det.observe(start + k * STEP, local, view_of(local) if view is None else view)
        k += 1
    return start + (k - 1) * STEP


# ---- at_limit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("load", "drop", "expected"),
    [(0.95, 0.0, True), (0.75, 0.0, True), (0.7499, 0.0, False), (0.0, 0.0, False), (0.1, 0.5, True)],
)
def test_at_limit_is_load_at_or_above_high_or_any_drop(load: float, drop: float, expected: bool) -> None:
    assert at_limit({"load": load, "ring_drop_pps": drop, "drop_pps": drop}, 0.75) is expected


def test_drops_by_verdict_are_work_not_overload() -> None:
    """A firewall that denies packets drops them by its verdict: drop_pps
    counts them, ring_drop_pps (a full rx ring) does not; only the latter
    is a limit."""
    assert at_limit({"load": 0.1, "drop_pps": 3000.0, "ring_drop_pps": 0.0}, 0.75) is False
    det = Detector(POLICY)
    deny = [dict(inst("fw", 0, 0.1), drop_pps=3000.0, ring_drop_pps=0.0)]
    end = feed(det, 0.0, 3.0, deny)
    assert det.overloaded(end) == []


def test_at_limit_reads_missing_rates_as_zero() -> None:
    assert at_limit({}, 0.75) is False
    assert at_limit({"load": 1}, 0.75) is True


# ---- overloaded ---------------------------------------------------------------------


def test_nothing_before_a_whole_window_has_been_watched() -> None:
    det = Detector(POLICY)
    hot = [inst("slow", 3, 0.95)]
    feed(det, 10.0, 10.875, hot)
    assert det.overloaded(10.875) == []
    det.observe(11.0, hot, view_of(hot))
    assert det.overloaded(11.0) == ["slow"]


def test_a_detector_that_has_seen_nothing_reports_nothing() -> None:
    det = Detector(POLICY)
    assert det.overloaded(100.0) == [] and det.surplus(100.0) == []


def test_overloaded_only_when_every_local_instance_is_at_its_limit() -> None:
    det = Detector(POLICY)
    mixed = [inst("slow", 1, 0.95), inst("slow", 2, 0.5)]
    end = feed(det, 0.0, 10.0, mixed)
    assert det.overloaded(end) == []
    both = [inst("slow", 1, 0.95), inst("slow", 2, 0.8)]
    end = feed(det, end + STEP, end + 1.0, both)
    assert det.overloaded(end) == []  # the last mixed sample is at the window's start
    det.observe(end + STEP, both, view_of(both))
    assert det.overloaded(end + STEP) == ["slow"]


def test_drops_put_an_instance_at_its_limit_whatever_its_load() -> None:
    det = Detector(POLICY)
    local = [inst("fw", 0, 0.1, drop=12.0), inst("fw", 1, 0.9)]
    end = feed(det, 0.0, 1.0, local)
    assert det.overloaded(end) == ["fw"]


def test_services_are_judged_apart_and_listed_sorted() -> None:
    det = Detector(POLICY)
    local = [inst("zz", 0, 0.9), inst("fw", 0, 0.2), inst("aa", 0, 0.8), inst("aa", 1, 0.0, drop=1.0)]
    end = feed(det, 0.0, 2.0, local)
    assert det.overloaded(end) == ["aa", "zz"]


def test_a_single_dip_starts_the_window_over() -> None:
    det = Detector(POLICY)
    hot, dip = [inst("slow", 1, 0.95)], [inst("slow", 1, 0.74)]
    end = feed(det, 0.0, 1.5, hot)
    assert det.overloaded(end) == ["slow"]
    det.observe(1.625, dip, view_of(dip))
    assert det.overloaded(1.625) == []
    # the dip is inside [now - window, now] up to and including 2.625
    end = feed(det, 1.75, 2.625, hot)
    assert det.overloaded(end) == []
    det.observe(2.75, hot, view_of(hot))
    assert det.overloaded(2.75) == ["slow"]


def test_between_low_and_high_nothing_happens() -> None:
    det = Detector(POLICY)
    local = [inst("fw", 0, 0.5), inst("fw", 1, 0.5)]
    end = feed(det, 0.0, 30.0, local)
    assert det.overloaded(end) == [] and det.surplus(end) == []


def test_reset_forgets_the_history() -> None:
    det = Detector(POLICY)
    hot = [inst("slow", 1, 0.95)]
    idle = [inst("slow", 1, 0.0), inst("slow", 2, 0.0, host="h2")]
    end = feed(det, 0.0, 5.0, hot, view_of(idle))
    assert det.overloaded(end) == ["slow"] and det.surplus(end) == ["slow"]
    det.reset("slow")
    assert det.overloaded(end) == [] and det.surplus(end) == []
    # a whole window again before it is overloaded once more
    end = feed(det, end + STEP, end + 1.0, hot, view_of(idle))
    assert det.overloaded(end) == []
    det.observe(end + STEP, hot, view_of(idle))
    assert det.overloaded(end + STEP) == ["slow"]


def test_reset_of_one_service_leaves_the_others() -> None:
    det = Detector(POLICY)
    local = [inst("a", 0, 0.9), inst("b", 0, 0.9)]
    end = feed(det, 0.0, 1.0, local)
    det.reset("a")
    det.reset("never-seen")
    assert det.overloaded(end) == ["b"]


# ---- surplus --------------------------------------------------------------------------


def test_surplus_when_the_others_could_carry_the_load_for_a_whole_in_window() -> None:
    det = Detector(POLICY)
    # 2 instances, 0.1 + 0.125 <= (2 - 1) * 0.25
    cluster = [inst("fw", 0, 0.1), inst("fw", 1, 0.125, host="h2")]
    end = feed(det, 0.0, 3.875, [], view_of(cluster))
    assert det.surplus(end) == []  # the (shorter) overload window has passed, not the in_window
    det.observe(4.0, [], view_of(cluster))
    assert det.surplus(4.0) == ["fw"]


def test_surplus_at_exactly_n_minus_one_times_low() -> None:
    det = Detector(POLICY)
    cluster = [inst("fw", 0, 0.25), inst("fw", 1, 0.25), inst("fw", 2, 0.0)]  # 0.5 == 2 * 0.25
    end = feed(det, 0.0, 4.0, [], view_of(cluster))
    assert det.surplus(end) == ["fw"]


def test_no_surplus_just_above_n_minus_one_times_low() -> None:
    det = Detector(POLICY)
    cluster = [inst("fw", 0, 0.25), inst("fw", 1, 0.25), inst("fw", 2, 0.001)]
    end = feed(det, 0.0, 20.0, [], view_of(cluster))
    assert det.surplus(end) == []


def test_never_a_surplus_with_a_single_instance() -> None:
    det = Detector(POLICY)
    end = feed(det, 0.0, 20.0, [], view_of([inst("fw", 0, 0.0)]))
    assert det.surplus(end) == []


def test_never_a_surplus_while_any_instance_drops() -> None:
    det = Detector(POLICY)
    cluster = [inst("fw", 0, 0.0), inst("fw", 1, 0.0, host="h2"), inst("fw", 2, 0.01, drop=0.5)]
    end = feed(det, 0.0, 20.0, [], view_of(cluster))
    assert det.surplus(end) == []


def test_surplus_is_cluster_wide_and_a_busy_moment_starts_it_over() -> None:
    det = Detector(POLICY)
    idle = view_of([inst("fw", 0, 0.0), inst("fw", 1, 0.0, host="h2")])
    busy = view_of([inst("fw", 0, 0.2), inst("fw", 1, 0.2, host="h2")])
    end = feed(det, 0.0, 3.0, [], idle)
    assert det.surplus(end) == []
    det.observe(3.125, [], busy)
    end = feed(det, 3.25, 3.125 + POLICY.in_window, [], idle)
    assert det.surplus(end) == []  # the busy sample is at the in_window's start
    det.observe(end + STEP, [], idle)
    assert det.surplus(end + STEP) == ["fw"]


def test_a_view_without_services_is_fine() -> None:
    det = Detector(POLICY)
    det.observe(0.0, [], {"hosts": {}})
    det.observe(1.0, [], {"hosts": {}, "services": None})
    assert det.surplus(10.0) == [] and det.overloaded(10.0) == []


# ---- memory ---------------------------------------------------------------------------


def test_old_samples_are_pruned() -> None:
    det = Detector(POLICY)
    local = [inst("fw", 0, 0.95), inst("fw", 1, 0.0, host="h2")]
    v = view_of(local)
    for k in range(10_000):
        det.observe(k * 0.1, local[:1], v)
    keep = 2 * max(POLICY.window, POLICY.in_window) + 1
    bound = int(keep / 0.1) + 2
    assert len(det.over["fw"].samples) <= bound
    assert len(det.under["fw"].samples) <= bound
    assert det.over["fw"].samples[0][0] >= 9_999 * 0.1 - keep
    assert det.overloaded(9_999 * 0.1) == ["fw"]


# ---- properties -----------------------------------------------------------------------


Sample = tuple[int, list[tuple[float, float]]]  # STEPs since the previous one, (load, drop_pps) each


def samples_of(loads: list[float]) -> st.SearchStrategy[list[Sample]]:
    """Runs of equal samples (so that whole windows do occur), 1-4 STEPs
    apart: never more than a window between two."""
    one = st.lists(
        st.tuples(st.sampled_from(loads), st.sampled_from([0.0, 0.0, 0.0, 3.0])), min_size=1, max_size=3
    )
    runs = st.lists(st.tuples(st.integers(1, 4), one, st.integers(1, 12)), min_size=1, max_size=12)
    return runs.map(lambda rs: [(dt, insts) for dt, insts, times in rs for _ in range(times)])


@given(samples_of([0.0, 0.5, 0.74, 0.75, 0.9, 1.0]), st.sampled_from([0.5, 1.0, 2.0]))
def test_overloaded_iff_every_sample_of_the_window_was_at_limit(samples: list[Sample], window: float) -> None:
    policy = Policy(high=0.75, low=0.25, window=window, in_window=2 * window)
    det = Detector(policy)
    seen: list[tuple[float, bool]] = []
    t = 100.0
    for dt, loads in samples:
        t += dt * STEP
        local = [inst("svc", n, load, drop) for n, (load, drop) in enumerate(loads)]
        det.observe(t, local, {"hosts": {}, "services": {}})
        seen.append((t, all(load >= 0.75 or drop > 0 for load, drop in loads)))
        expected = seen[0][0] <= t - window and all(c for ts, c in seen if t - window <= ts <= t)
        assert det.overloaded(t) == (["svc"] if expected else [])


@given(samples_of([0.0, 0.05, 0.125, 0.2, 0.25, 0.5]), st.sampled_from([0.5, 1.0]))
def test_surplus_iff_every_sample_of_the_in_window_had_one_too_many(
    samples: list[Sample], in_window: float
) -> None:
    policy = Policy(high=0.75, low=0.25, window=in_window / 2, in_window=in_window)
    det = Detector(policy)
    seen: list[tuple[float, bool]] = []
    t = 0.0
    for dt, loads in samples:
        t += dt * STEP
        cluster = [inst("svc", n, load, drop) for n, (load, drop) in enumerate(loads)]
        det.observe(t, [], view_of(cluster))
        n, total = len(loads), sum(load for load, _ in loads)
        seen.append((t, n > 1 and total <= (n - 1) * 0.25 and not any(drop > 0 for _, drop in loads)))
        expected = seen[0][0] <= t - in_window and all(c for ts, c in seen if t - in_window <= ts <= t)
        assert det.surplus(t) == (["svc"] if expected else [])


# ---- bugs ---------------------------------------------------------------------------------


def test_a_service_no_longer_running_here_is_not_overloaded() -> None:
    det = Detector(POLICY)
    idle = [inst("fw", 0, 0.05)]
    end = feed(det, 0.0, 2.0, idle)
    assert det.overloaded(end) == []
    end = feed(det, end + STEP, end + 3.0, [])  # its last instance here is draining, then gone
    assert det.overloaded(end) == []


def test_one_sample_after_a_gap_is_not_a_whole_window() -> None:
    det = Detector(POLICY)
    end = feed(det, 0.0, 2.0, [inst("fw", 0, 0.1)])
    hot = [inst("fw", 0, 0.95)]
    det.observe(end + 3.0, hot, view_of(hot))
    assert det.overloaded(end + 3.0) == []
