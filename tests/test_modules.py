"""The modules manager, nf, chain and onvm_info against a real onvm-mgr and
Docker: check mode changes nothing, a second run changes nothing, diffs say
what changes, bad input is refused with nothing changed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container
from ansible_collections.onvm.nfv.plugins.module_utils.manager_proc import status, stop
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlClient
from ansible_collections.onvm.nfv.plugins.modules import chain, manager, nf, onvm_info
from ansible_collections.onvm.nfv.tests.unit.plugins.modules.module_runner import ModuleRunner
from onvm.lab.manager import binary, leftovers


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> ModuleRunner:
    return ModuleRunner(capsys)


@pytest.fixture
def host(tag: str, hugepages: int, built: None, docker_client: Any) -> Iterator[str]:
    name = "t" + tag
    yield name
    nf_container.remove_host(docker_client, name)
    stop(name)


def mgr_args(host: str, **kw: Any) -> dict[str, Any]:
    return dict(host=host, binary=binary("onvm-mgr"), ports=["net_null0"], supervisor="detached", **kw)


@pytest.mark.dataplane
def test_manager_module_check_idempotence_restart_stop(run: ModuleRunner, host: str) -> None:
    r = run(manager.main, check_mode=True, diff=True, **mgr_args(host))
    assert r["changed"] and r["diff"]["before"]["running"] is False and r["diff"]["after"]["running"]
    assert not status(host)["answers"] and leftovers(host) == []  # check mode did nothing

    r = run(manager.main, **mgr_args(host))
    assert r["changed"] and r["pid"] > 0
    first_pid = r["pid"]
    assert os.path.exists("/proc/%d" % first_pid)

    r = run(manager.main, **mgr_args(host))
    assert r["changed"] is False and r["pid"] == first_pid  # same config: left alone

    r = run(manager.main, diff=True, **mgr_args(host, mem_mb=80))
    assert r["changed"] and r["pid"] != first_pid  # changed config: restarted
    assert r["diff"]["before"]["config"]["mem_mb"] == 64 and r["diff"]["after"]["config"]["mem_mb"] == 80

    r = run(manager.main, **mgr_args(host, state="stopped"))
    assert r["changed"]
    assert not status(host)["answers"] and leftovers(host) == []
    r = run(manager.main, **mgr_args(host, state="stopped"))
    assert r["changed"] is False


@pytest.mark.dataplane
def test_manager_module_reports_the_managers_refusal(run: ModuleRunner, host: str) -> None:
    r = run(manager.main, **{**mgr_args(host), "ports": ["net_af_packet0,iface=eth0"]})
    assert r["failed"] and "refusing interface 'eth0'" in r["msg"]
    r = run(manager.main, **mgr_args(host, mem_mb=8))
    assert r["failed"] and r["msg"] == "mem_mb: must be at least 16, got 8"
    r = run(manager.main, **{**mgr_args(host), "host": "no/slashes"})
    assert r["failed"] and "not a valid name" in r["msg"]
    assert not status(host)["answers"] and leftovers(host) == []


@pytest.mark.dataplane
def test_nf_chain_and_info_modules(run: ModuleRunner, host: str, docker_client: Any) -> None:
    assert run(manager.main, **mgr_args(host))["changed"]
    nf_args = dict(host=host, service="fwd", image="onvm/forward:0.1.0")

    r = run(nf.main, check_mode=True, diff=True, instances=2, **nf_args)
    assert r["changed"] and r["started"] == ["onvm-%s-fwd-0" % host, "onvm-%s-fwd-1" % host]
    assert nf_container.find(docker_client, host) == []  # check mode started nothing

    r = run(nf.main, instances=2, **nf_args)
    assert r["changed"] and sorted(i["instance"] for i in r["instances"]) == [0, 1]
    assert run(nf.main, instances=2, **nf_args)["changed"] is False

    r = run(nf.main, instances=1, **nf_args)
    assert r["removed"] == ["onvm-%s-fwd-1" % host] and len(r["instances"]) == 1

    r = run(nf.main, instances=1, **{**nf_args, "image": "example/not-here:1"})
    assert r["failed"] and "is not on this host" in r["msg"]
    assert len(nf_container.find(docker_client, host)) == 1  # nothing touched

    chains = {"web": {"services": ["fwd"], "match": {"proto": "udp"}, "egress": "port0"}}
    r = run(chain.main, check_mode=True, diff=True, host=host, chains=chains)
    assert r["changed"] and r["set"] == ["web"] and r["diff"]["before"] == {}
    assert run(onvm_info.main, host=host)["chains"] == []
    assert run(chain.main, host=host, chains=chains)["changed"]
    assert run(chain.main, host=host, chains=chains)["changed"] is False
    # another spelling of a match the manager reports its own way: applied
    # once, then left alone (17 is "udp", an address alone is a /32)
    spelled = {"web": {**chains["web"], "match": {"proto": 17, "dst": "198.18.0.5"}}}
    assert run(chain.main, host=host, chains=spelled)["changed"]
    assert run(chain.main, host=host, chains=spelled)["changed"] is False
    assert run(chain.main, host=host, chains=chains)["changed"]

    bad = {"web": {"services": ["fwd", "nosuch"]}, "other": {"services": ["fwd"]}}
    r = run(chain.main, host=host, chains=bad)
    assert r["failed"] and r["msg"] == "chain web: unknown service(s) nosuch"
    info = run(onvm_info.main, host=host)
    assert [c["name"] for c in info["chains"]] == ["web"]  # 'other' was not applied either
    assert info["running"] and info["stats"]["host"] == host
    # nf_list is the manager's word now; the stats area lags by up to one period
    assert [n["service"] for n in info["nfs"] if n["state"] == "running"] == ["fwd"]
    assert "fwd" in {n["service"] for n in info["stats"]["nfs"]}

    r = run(nf.main, state="absent", **nf_args)
    assert r["changed"] and nf_container.find(docker_client, host) == []
    assert run(onvm_info.main, host="nobody-here")["running"] is False


@pytest.mark.dataplane
def test_chain_module_stand_ins_and_one_the_scaler_drained(run: ModuleRunner, host: str) -> None:
    """The chain module sets the stand-ins for other hosts' services once;
    one the scaler drained (its host lost) is left drained by a re-deploy:
    only the scaler revives it, when that host is back in the view."""
    assert run(manager.main, **mgr_args(host))["changed"]
    chains = {"web": {"services": ["ids"], "egress": "port0"}}
    remotes = [{"service": "ids", "host": "peer" + host, "port": "port0"}]
    r = run(chain.main, check_mode=True, host=host, chains=chains, remotes=remotes)
    assert r["changed"] and r["remotes_set"] == remotes
    assert run(onvm_info.main, host=host)["nfs"] == []  # check mode set nothing
    assert run(chain.main, host=host, chains=chains, remotes=remotes)["changed"]
    (stand_in,) = run(onvm_info.main, host=host)["nfs"]
    assert (stand_in["remote_host"], stand_in["state"], stand_in["load_pct"]) == (
        "peer" + host,
        "running",
        100,
    )
    assert run(chain.main, host=host, chains=chains, remotes=remotes)["changed"] is False

    with CtlClient(host) as ctl:
        ctl.call("drain", instance=stand_in["instance"], evict=True)  # what the scaler does
    r = run(chain.main, host=host, chains=chains, remotes=remotes)
    assert r["changed"] is False and r["remotes_set"] == []
    (after,) = run(onvm_info.main, host=host)["nfs"]
    assert (after["instance"], after["state"], after["evicted"]) == (stand_in["instance"], "draining", True)

    r = run(chain.main, host=host, chains={}, remotes=[], purge=True)
    assert r["changed"] and r["remotes_deleted"] == [{"service": "ids", "host": "peer" + host}]
    assert [n["state"] for n in run(onvm_info.main, host=host)["nfs"]] in (
        [],
        ["dead"],
    )  # slot not reused yet
