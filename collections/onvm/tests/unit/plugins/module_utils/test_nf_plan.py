"""Reconciling NF containers: the pure plan."""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.onvm.nfv.plugins.module_utils.nf_container import (
    NFSpec,
    ServiceConf,
    instance_name,
    plan,
    run_kwargs,
    spec_for,
)


def fp(i: int) -> str:
    return "cfg"


def names(*idx: int) -> list[str]:
    return [instance_name("h", "fw", i) for i in idx]


def test_starts_what_is_missing_at_the_lowest_free_indexes() -> None:
    existing = {names(1)[0]: (True, "cfg")}
    p = plan(existing, 3, fp)
    assert p.keep == names(1)
    assert p.start == [0, 2]
    assert p.remove == []


def test_replaces_stopped_and_reconfigured_and_trims_from_the_top() -> None:
    existing = {
        names(0)[0]: (False, "cfg"),  # exited
        names(1)[0]: (True, "old"),  # other configuration
        names(2)[0]: (True, "cfg"),
        names(3)[0]: (True, "cfg"),
        names(4)[0]: (True, "cfg"),
    }
    p = plan(existing, 2, fp)
    assert p.keep == names(2, 3)
    assert p.remove == names(0, 1, 4)
    assert p.start == []


def test_a_converged_service_changes_nothing() -> None:
    existing = {n: (True, "cfg") for n in names(0, 1)}
    p = plan(existing, 2, fp)
    assert (p.start, p.remove) == ([], [])


@given(
    st.dictionaries(st.integers(0, 20), st.tuples(st.booleans(), st.sampled_from(["cfg", "old"]))),
    st.integers(0, 25),
)
def test_plan_always_ends_with_exactly_want_healthy_instances(
    state: dict[int, tuple[bool, str]], want: int
) -> None:
    existing = {instance_name("h", "fw", i): v for i, v in state.items()}
    p = plan(existing, want, fp)
    after = set(p.keep) | set(names(*p.start))
    assert len(after) == want == len(p.keep) + len(p.start)
    assert set(p.keep).isdisjoint(p.remove)
    assert set(p.keep) | set(p.remove) == set(existing)
    assert all(existing[n] == (True, "cfg") for n in p.keep)
    assert not set(names(*p.start)) & set(p.keep)


def test_containers_are_hardened_and_share_the_hosts_pid_namespace() -> None:
    kw = run_kwargs(
        NFSpec(
            host="lab1",
            service="fw",
            image="onvm/firewall:0.1.0",
            name="n",
            core=1,
            files={"/etc/r": "/etc/onvm/fw.rules"},
        )
    )
    assert kw["network_mode"] == "none"
    assert kw["cap_drop"] == ["ALL"] and kw["cap_add"] == ["SYS_NICE"]
    assert kw["read_only"] is True and "no-new-privileges" in kw["security_opt"]
    assert kw["restart_policy"] == {"Name": "unless-stopped"}
    assert kw["pid_mode"] == "container:onvm-lab1-pidns"
    assert "privileged" not in kw
    assert kw["volumes"]["/etc/r"] == {"bind": "/etc/onvm/fw.rules", "mode": "ro"}
    assert kw["cpuset_cpus"] == "1"
    assert (
        kw["labels"]["org.onvm.config"]
        == NFSpec(
            host="lab1",
            service="fw",
            image="onvm/firewall:0.1.0",
            name="other",
            core=1,
            files={"/etc/r": "/etc/onvm/fw.rules"},
        ).fingerprint()
    )
    assert kw["command"][:2] == ["--host", "lab1"] and "--core" in kw["command"]


def test_a_files_digest_given_beforehand_is_the_configuration_it_will_be(tmp_path: Path) -> None:
    """check mode: the play has not written the new rules yet; the digest the
    role passes makes the fingerprint what it will be once written."""
    rules = tmp_path / "fw.rules"
    rules.write_text("default allow\n")
    conf = ServiceConf(image="onvm/firewall:0.1.0", files={str(rules): "/etc/onvm/fw.rules"})
    now = spec_for("h", "firewall", conf, 0).fingerprint()
    new = "default deny\n"
    foreseen = ServiceConf(**{**vars(conf), "file_digests": {str(rules): sha256(new.encode()).hexdigest()}})
    ahead = spec_for("h", "firewall", foreseen, 0).fingerprint()
    assert ahead != now
    rules.write_text(new)
    assert spec_for("h", "firewall", conf, 0).fingerprint() == ahead == nf_file_digest_fp(foreseen)


def nf_file_digest_fp(conf: ServiceConf) -> str:
    """(the digest of what is on disk now agrees with the one given)"""
    return spec_for("h", "firewall", ServiceConf(**{**vars(conf), "file_digests": {}}), 0).fingerprint()
