# SPDX-License-Identifier: GPL-3.0-or-later
"""The systemd units the manager and scaler modules write where systemd is
PID 1: their text, the boot order they declare, and systemd's own verdict on
them (``systemd-analyze verify``, which reads unit files without a running
systemd).  These machines have no systemd as PID 1, so the units are not
started here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import units
from ansible_collections.onvm.nfv.plugins.module_utils.manager_proc import ManagerConfig, unit_text
from ansible_collections.onvm.nfv.plugins.modules import scaler

ANALYZE = shutil.which("systemd-analyze")


def verify(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return subprocess.run(
        [str(ANALYZE), "verify", *(str(tmp_path / n) for n in files)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_exec_line_quotes_every_word_with_systemds_escapes() -> None:
    assert units.exec_line(["/usr/bin/x", "a b", 'q"t', "50%", "back\\slash"]) == (
        '"/usr/bin/x" "a b" "q\\"t" "50%%" "back\\\\slash"'
    )


def test_the_manager_unit_comes_after_hugepages_bindings_and_sysctl() -> None:
    cfg = ManagerConfig(host="rack1", ports=["0000:3b:00.0"], core=2, mem_mb=1024)
    text = unit_text(cfg)
    lines = text.splitlines()
    after = next(line for line in lines if line.startswith("After=")).split("=", 1)[1].split()
    assert after == list(units.DATAPLANE_AFTER)
    assert 'ExecStart="/usr/bin/onvm-mgr" "--host" "rack1" "--core" "2" "--mem" "1024"' in text
    assert "Restart=on-failure" in lines and "LimitMEMLOCK=infinity" in lines
    assert "# onvm-config %s" % cfg.fingerprint() in lines
    assert lines[-1] == "WantedBy=multi-user.target"


def test_the_scaler_unit_comes_after_its_manager_and_the_network() -> None:
    text = scaler.unit_text("rack1", ["/opt/onvm/rack1/venv/bin/onvm-scaler", "--host", "rack1"], {"a": 1})
    lines = text.splitlines()
    assert "After=network-online.target onvm-mgr-rack1.service" in lines
    assert "Wants=network-online.target onvm-mgr-rack1.service" in lines
    assert "Restart=always" in lines
    # another configuration is another text (the module restarts the unit on it)
    assert text != scaler.unit_text(
        "rack1", ["/opt/onvm/rack1/venv/bin/onvm-scaler", "--host", "rack1"], {"a": 2}
    )


@pytest.mark.skipif(ANALYZE is None, reason="no systemd-analyze")
def test_systemd_analyze_verifies_both_units(tmp_path: Path) -> None:
    exe = shutil.which("true")
    assert exe
    mgr = unit_text(ManagerConfig(host="rack1", binary=exe, ports=["0000:3b:00.0"]))
    agent = scaler.unit_text("rack1", [exe, "--host", "rack1"], {})
    proc = verify(tmp_path, {"onvm-mgr-rack1.service": mgr, "onvm-scaler-rack1.service": agent})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # and a broken one is caught: the test can fail
    bad = verify(tmp_path, {"onvm-bad.service": mgr.replace("ExecStart=", "ExecStart=nowhere/")})
    assert bad.returncode != 0
