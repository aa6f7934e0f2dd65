"""onvm-mgr supervision: command line, configuration identity, unit file."""

from __future__ import annotations

from ansible_collections.onvm.nfv.plugins.module_utils.manager_proc import (
    ManagerConfig,
    added_ports,
    unit_text,
)


def test_argv_carries_every_setting() -> None:
    cfg = ManagerConfig(
        host="lab1", ports=["net_null0", "0000:03:00.0"], core=1, mem_mb=128, extra_eal=["--log-level=8"]
    )
    argv = cfg.argv()
    assert argv[:3] == ["/usr/bin/onvm-mgr", "--host", "lab1"]
    assert argv[argv.index("--core") + 1] == "1" and argv[argv.index("--mem") + 1] == "128"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--port"] == ["net_null0", "0000:03:00.0"]
    assert argv[-2:] == ["--", "--log-level=8"]


def test_fingerprint_changes_with_the_configuration_only() -> None:
    a = ManagerConfig(host="lab1", ports=["net_null0"])
    assert a.fingerprint() == ManagerConfig(host="lab1", ports=["net_null0"]).fingerprint()
    assert a.fingerprint() != ManagerConfig(host="lab1", ports=["net_null1"]).fingerprint()
    assert a.fingerprint() != ManagerConfig(host="lab1", ports=["net_null0"], mem_mb=96).fingerprint()


def test_unit_file_runs_the_same_command_and_restarts_on_failure() -> None:
    cfg = ManagerConfig(host="lab1", ports=["net_null0"])
    text = unit_text(cfg)
    assert 'ExecStart="/usr/bin/onvm-mgr" "--host" "lab1"' in text
    assert "Restart=on-failure" in text
    assert cfg.fingerprint() in text


LAB0 = "net_af_packet0,iface=ovx0,framecnt=8192"
LAB1 = "net_af_packet1,iface=ovx1,framecnt=8192"
LAB2 = "net_af_packet2,iface=ovx2,framecnt=8192"


def test_only_appended_vdevs_are_added_live() -> None:
    old = ManagerConfig(host="x", ports=[LAB0, LAB1])
    assert added_ports(old, ManagerConfig(host="x", ports=[LAB0, LAB1, LAB2])) == [LAB2]
    assert added_ports(old, ManagerConfig(host="x", ports=[LAB0, LAB1, LAB2, "net_null3"])) == [
        LAB2,
        "net_null3",
    ]


def test_any_other_change_is_a_restart() -> None:
    old = ManagerConfig(host="x", ports=[LAB0, LAB1])
    restarts = [
        ManagerConfig(host="x", ports=[LAB0, LAB1]),  # nothing to add
        ManagerConfig(host="x", ports=[LAB0]),  # removed
        ManagerConfig(host="x", ports=[LAB1, LAB0, LAB2]),  # reordered
        ManagerConfig(host="x", ports=[LAB0, LAB1, "0000:03:00.0"]),  # PCI
        ManagerConfig(host="x", ports=[LAB0, LAB1, LAB2], mem_mb=80),  # and the memory
    ]
    for new in restarts:
        assert added_ports(old, new) == [], new
    assert added_ports(None, ManagerConfig(host="x", ports=[LAB0])) == []
