"""module_utils/names.py: every per-host name, and what a dead manager leaves."""

from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.onvm.nfv.plugins.module_utils import names


def test_a_hosts_names() -> None:
    n = names.host_names("lab1", lab_ports=2)
    assert n["file_prefix"] == "onvm-lab1"
    assert n["ctl_socket"] == "/var/run/dpdk/onvm-lab1/onvm.sock"
    assert n["stats"] == "/dev/shm/onvm-lab1.stats"
    assert n["scaler_config"] == "/etc/onvm/lab1/scaler.json"
    assert n["agent_dir"] == "/opt/onvm/lab1"
    assert n["staged_dir"] == "/etc/onvm/lab1/staged"
    assert n["pidns_container"] == "onvm-lab1-pidns"
    assert names.container("lab1", "firewall", 3) == "onvm-lab1-firewall-3"
    assert n["lab_ports"][1] == {
        "iface": "ovlab11",
        "peer": "ovplab11",
        "netns": "onvm-lab1-n1",
        "vdev": "net_af_packet1,iface=ovlab11,framecnt=8192",
    }
    assert n["manager_daemon"] == "onvm-mgr-lab1" and n["scaler_daemon"] == "onvm-scaler-lab1"


def test_lab_netns_re_tells_a_host_from_one_whose_name_starts_alike() -> None:
    import re

    rx = names.lab_netns_re("lab1")
    assert re.match(rx, "onvm-lab1-n0") and re.match(rx, "onvm-lab1-n12")
    assert not re.match(rx, "onvm-lab1-nx") and not re.match(rx, "onvm-lab1-n0-n1")
    assert not re.match(names.lab_netns_re("lab"), "onvm-lab1-n0")


def test_leftovers_are_what_a_killed_manager_leaves_and_nothing_of_another_host(tmp_path: Path) -> None:
    huge, rd = tmp_path / "huge", tmp_path / "rd"
    huge.mkdir()
    (huge / "onvm-h1map_0").write_bytes(b"")
    (huge / "onvm-h1map_1").write_bytes(b"")
    (huge / "onvm-h10map_0").write_bytes(b"")  # another host's
    (rd / "onvm-h1").mkdir(parents=True)
    (rd / "onvm-h10").mkdir()
    got = names.leftovers("h1", str(rd), str(huge))
    assert got == sorted([str(huge / "onvm-h1map_0"), str(huge / "onvm-h1map_1"), str(rd / "onvm-h1")])
    assert all(os.path.dirname(g) for g in names.leftover_globs("h1"))
