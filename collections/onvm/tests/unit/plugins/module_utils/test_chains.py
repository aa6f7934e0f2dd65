"""Declared chains: normalising, diffing, checking before applying."""

from __future__ import annotations

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import chains as ch


def test_normalise_matches_what_the_manager_reports() -> None:
    spec = ch.normalise(
        "web", {"services": ["fw", "fwd"], "match": {"in_port": "port0", "dst_port": 80}, "egress": 1}
    )
    assert spec == {
        "services": ["fw", "fwd"],
        "match": {"in_port": 0, "dst_port": 80},
        "egress": "port1",
        "ingress": True,
    }


@pytest.mark.parametrize(
    ("declared", "reported"),
    [
        ({"proto": "UDP"}, {"proto": "udp"}),
        ({"proto": 17}, {"proto": "udp"}),
        ({"proto": "6"}, {"proto": "tcp"}),
        ({"proto": "icmp"}, {"proto": 1}),
        ({"proto": 47}, {"proto": 47}),
        ({"src": "10.1.2.3"}, {"src": "10.1.2.3/32"}),
        ({"dst": "198.18.0.0/15"}, {"dst": "198.18.0.0/15"}),
        ({"dst": "0.0.0.0/0"}, {}),
    ],
)
def test_normalise_spells_a_match_as_the_manager_does(
    declared: dict[str, object], reported: dict[str, object]
) -> None:
    """A chain declared with another spelling of the same match is not
    re-set on every run (the manager's chain_list is what it is compared to)."""
    assert ch.normalise("c", {"services": ["fw"], "match": declared})["match"] == reported


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"services": []}, "non-empty list"),
        ({"services": "fw"}, "non-empty list"),
        ({"services": ["fw"], "colour": 1}, "unknown key"),
        ({"services": ["fw"], "match": {"vlan": 3}}, "match: unknown key"),
        ("fw", "must be a mapping"),
    ],
)
def test_malformed_chains_name_the_bad_key(spec: object, message: str) -> None:
    with pytest.raises(ch.ChainSpecError, match="chain web: .*" + message):
        ch.normalise("web", spec)  # type: ignore[arg-type]


def test_diff_sets_new_and_changed_and_purges_the_rest() -> None:
    have = {
        "a": {"services": ["x"], "match": {}, "egress": None},
        "b": {"services": ["x"], "match": {}, "egress": None},
        "old": {"services": ["x"], "match": {}, "egress": None},
    }
    want = {
        "a": {"services": ["x"], "match": {}, "egress": None},
        "b": {"services": ["x", "y"], "match": {}, "egress": None},
        "c": {"services": ["y"], "match": {}, "egress": "port1"},
    }
    assert ch.diff(have, want, purge=True) == {"set": ["b", "c"], "delete": ["old"]}
    assert ch.diff(have, want, purge=False) == {"set": ["b", "c"], "delete": []}
    assert ch.diff(want, want, purge=True) == {"set": [], "delete": []}


def test_check_names_unknown_services_and_ports() -> None:
    spec = ch.normalise("web", {"services": ["fw", "ids"], "egress": "port3"})
    assert (
        ch.check("web", spec, {"fw", "ids"}, 2) == "chain web: egress: no port port3 on this host (it has 2)"
    )
    assert ch.check("web", spec, {"fw"}, 4) == "chain web: unknown service(s) ids"
    assert ch.check("web", spec, {"fw", "ids"}, 4) is None
