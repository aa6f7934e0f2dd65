"""group_vars validation: every problem found, each naming its key."""

from __future__ import annotations

import shlex
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils.config import (
    config_errors,
    host_chain_errors,
    nf_file_check,
    nf_staged_files,
)
from ansible_collections.onvm.nfv.plugins.module_utils.nf_container import (
    ServiceConf,
    check_argv,
    check_mounts,
)

GOOD: dict[str, Any] = {
    "firewall": {
        "image": "onvm/firewall:0.1.0",
        "instances": 1,
        "max_instances": 4,
        "args": ["-r", "/x"],
        "files": {"fw.rules": "/etc/onvm/fw.rules"},
    },
    "forward": {"image": "onvm/forward:0.1.0"},
}
CHAINS: dict[str, Any] = {
    "web": {
        "match": {"in_port": "port0", "dst_port": 80},
        "services": ["firewall", "forward"],
        "egress": "port1",
    }
}


def test_the_shipped_shape_is_valid() -> None:
    assert config_errors(GOOD, CHAINS) == []
    assert config_errors(GOOD, None) == []


def test_each_problem_names_its_key() -> None:
    services = {
        "firewall": {"image": "onvm/firewall:0.1.0", "instances": -1},
        "forward": {"instances": 1},
        "big": {"image": "x", "instances": 1000},
        "odd": {"image": "x", "colour": "red"},
        "narrow": {"image": "x", "instances": 5, "max_instances": 2},
        "bad name!": {"image": "x"},
    }
    chains = {
        "web": {"services": ["firewall", "nosuch"], "match": {"dst_port": 0, "vlan": 3}},
        "loop": {"services": ["forward", "big", "forward"]},
        "empty": {"services": []},
    }
    errors = config_errors(services, chains)
    expected = [
        "onvm_services.firewall.instances: must be an integer 0-64, got -1",
        "onvm_services.forward.image: required",
        "onvm_services.big.instances: must be an integer 0-64, got 1000",
        "onvm_services.odd.colour: unknown key",
        "onvm_services.narrow.instances: 5 is outside min_instances..max_instances (0..2)",
        "onvm_services.bad name!: the name must be",
        "onvm_chains.web.services[1]: unknown service 'nosuch'",
        "onvm_chains.web.match.vlan: unknown key",
        "onvm_chains.web.match.dst_port: must be 1-65535, got 0",
        "onvm_chains.loop.services[2]: 'forward' appears twice",
        "onvm_chains.empty.services: required",
    ]
    for message in expected:
        assert any(e.startswith(message) for e in errors), (message, errors)
    assert len(errors) == len(expected)


def test_wrong_top_level_types() -> None:
    assert config_errors([], {}) == ["onvm_services: must be a mapping of service name to its settings"]
    assert config_errors({}, ["web"]) == ["onvm_chains: must be a mapping of chain name to its settings"]


def test_chains_are_checked_against_each_hosts_ports() -> None:
    assert host_chain_errors(CHAINS, "h1", 2) == []
    assert host_chain_errors(CHAINS, "h1", 1) == [
        "h1: chain web: egress: no port port1 on this host (it has 1)"
    ]
    seven = {"web": {**CHAINS["web"], "egress": "port7"}}
    assert host_chain_errors(seven, "h1", 2) == [
        "h1: chain web: egress: no port port7 on this host (it has 2)"
    ]
    far_in = {"web": {**CHAINS["web"], "match": {"in_port": 3}}}
    assert host_chain_errors(far_in, "h1", 2) == [
        "h1: chain web: match.in_port: no port 3 on this host (it has 2)"
    ]


def test_a_files_check_asks_the_first_service_that_mounts_it() -> None:
    cmd = shlex.split(nf_file_check("fw.rules", GOOD, "h1"))
    assert cmd[:3] == ["docker", "run", "--rm"] and "--network" in cmd and "none" in cmd
    # the new file (%s: the copy task's temporary file) where the NF reads it
    assert cmd[cmd.index("--mount") + 1] == "type=bind,src=%s,dst=/etc/onvm/fw.rules,readonly"
    image = cmd.index("onvm/firewall:0.1.0")
    assert cmd[image + 1 :] == ["--check", "--host", "h1", "--service", "firewall", "--runtime-dir",
                                "/var/run/dpdk", "--", "-r", "/x"]  # fmt: skip
    assert nf_file_check("other.rules", GOOD, "h1") == ""


def test_the_first_play_checks_the_staged_files_where_the_nf_reads_them() -> None:
    staged = nf_staged_files({"rules/fw.rules": "/etc/onvm/fw.rules"}, "h1")
    assert staged == {"/etc/onvm/fw.rules": "/etc/onvm/h1/staged/fw.rules"}
    assert nf_staged_files(None, "h1") == {}
    conf = ServiceConf(image="onvm/firewall:0.1.0", files={"/etc/onvm/h1/fw.rules": "/etc/onvm/fw.rules"})
    cmd = check_argv("h1", "firewall", conf, staged)
    # the staged copy, not the one the instances mount, and only once
    assert cmd.count("--mount") == 1 and "-v" not in cmd  # (-v would make a missing source a directory)
    assert (
        cmd[cmd.index("--mount") + 1]
        == "type=bind,src=/etc/onvm/h1/staged/fw.rules,dst=/etc/onvm/fw.rules,readonly"
    )
    assert check_mounts(conf, staged) == {"/etc/onvm/fw.rules": "/etc/onvm/h1/staged/fw.rules"}
