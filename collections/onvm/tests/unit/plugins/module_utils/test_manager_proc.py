"""onvm-mgr supervision: command line, configuration identity, unit file."""

from __future__ import annotations

from ansible_collections.onvm.nfv.plugins.module_utils.manager_proc import ManagerConfig, unit_text


def test_argv_carries_every_setting() -> None:
    cfg = ManagerConfig(
        host="lab1", ports=["net_null0", "0000:03:00.0"], core=1, mem_mb=128, extra_eal=["--log-level=8"]
    )
    argv = cfg.argv()
    assert argv[:3] == ["/usr/local/bin/onvm-mgr", "--host", "lab1"]
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
    assert "ExecStart='/usr/local/bin/onvm-mgr' '--host' 'lab1'" in text
    assert "Restart=on-failure" in text
    assert cfg.fingerprint() in text
