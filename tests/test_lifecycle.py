"""A host's life, in sequence (src/onvm/lab/lifecycle.py): after every event --
a burst, an NF started, scale-in, scale-out, an NF killed -9, a container
restarted by Docker, the chain swapped, the manager restarted, the fabric
peer gone -- the manager is idle again within a second (under 5% of a core;
a fresh one uses ~1%), and so are the NFs; the service's and the chain's
totals never go back while the manager runs."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from onvm.lab import lifecycle, scaler_proc
from onvm.lab.hugepages import ensure_free
from onvm.lab.manager import ManagerProcess
from onvm.lab.netns import lab_ports
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import VERSION, wait_until

IDLE = 0.05  # share of a core: an idle manager uses ~0.01, a spinning one 1.0


@pytest.mark.dataplane
@pytest.mark.docker
def test_the_manager_is_idle_again_after_every_lifecycle_event(
    tag: str, built: None, docker_client: Any, redis_server: RedisServer, tmp_path: Any
) -> None:
    ensure_free(200)
    host, peer_host = "lc" + tag, "lp" + tag
    rules = tmp_path / "fw.rules"
    rules.write_text("default allow\ndeny proto udp dport 1000-1999\n")
    fw = nc.ServiceConf(
        image="onvm/firewall:%s" % VERSION,
        args=["-r", "/etc/onvm/fw.rules"],
        files={str(rules): "/etc/onvm/fw.rules"},
    )
    fwd = nc.ServiceConf(image="onvm/forward:%s" % VERSION)
    sock = str(tmp_path / "fabric.sock")
    memif = "net_memif%d,role=%s,id=0,socket=" + sock + ",socket-abstract=no"
    chain = {
        "services": ["firewall", "forward"],
        "egress": "port1",
        "match": {"in_port": "port0", "proto": "udp"},
    }
    conf = {
        "services": {
            "firewall": {"image": fw.image, "args": fw.args, "files": fw.files, "min": 1, "max": 3},
            "forward": {"image": fwd.image, "min": 1, "max": 1},
        },
        "policy": {"in_window": 2.0, "cooldown": 1.0, "drain_bound": 0.5},
        "chains": {"web": chain},
    }
    seen: list[tuple[str, dict[str, float], dict[str, Any]]] = []
    with lab_ports(tag, 2) as ports:
        mgr = ManagerProcess(host, [ports[0].vdev(0), ports[1].vdev(1), memif % (2, "server")], core=0)
        peer = ManagerProcess(peer_host, [memif % (0, "client")], core=1)
        scaler: subprocess.Popen[bytes] | None = None
        try:
            mgr.start()
            peer.start()
            for svc, c in (("firewall", fw), ("forward", fwd)):
                nc.start(docker_client, nc.spec_for(host, svc, c, 0))
            mgr.call("chain_set", name="web", **chain)
            scaler = scaler_proc.start(host, redis_server.url, conf, tmp_path)
            proc = scaler

            def restart_manager() -> None:
                mgr.stop()
                mgr.start()

            def kill_peer() -> None:
                assert peer.proc is not None
                peer.proc.send_signal(signal.SIGKILL)
                peer.proc.wait(10)

            h = lifecycle.Host(
                name=host,
                docker=docker_client,
                redis=redis_server.client(),
                ingress=ports[0],
                service="firewall",
                conf=fw,
                other="forward",
                chain="web",
                restart_manager=restart_manager,
                scaler_pid=lambda: proc.pid,
                kill_peer=kill_peer,
            )
            assert wait_until(lambda: len(h.running("forward")) == 1, 20)
            lifecycle.walk(h, lambda step, shares, snap: seen.append((step, shares, snap)))
        finally:
            scaler_proc.stop(scaler)
            nc.remove_host(docker_client, host)
            mgr.stop()
            peer.stop()
    steps = [s for s, _, _ in seen]
    assert steps == ["fresh"] + [name for name, _ in lifecycle.STEPS], steps
    for step, shares, _ in seen:
        assert shares["onvm-mgr"] < IDLE, "after %s the manager used %.1f%% of a core: %s" % (
            step,
            100 * shares["onvm-mgr"],
            shares,
        )
        nfs = {k: v for k, v in shares.items() if "/" in k}
        assert nfs and all(v < IDLE for v in nfs.values()), (step, shares)
    # totals never go back while the manager runs (it restarts at
    # manager-restarted: from then on they count again from 0)
    before_restart = [snap for step, _, snap in seen][: steps.index("manager-restarted")]

    def total(snap: dict[str, Any], what: str, name: str, key: str) -> int:
        return next((int(t[key]) for t in snap[what] if t.get("service", t.get("chain")) == name), 0)

    for what, name, key in (
        ("services", "firewall", "rx"),
        ("services", "forward", "tx"),
        ("chains", "web", "rx"),
    ):
        counts = [total(s, what, name, key) for s in before_restart]
        assert counts == sorted(counts), (what, name, key, counts)
    sent_before_restart = 10_000 + 1000  # the burst, the burst after the chain swap
    assert total(before_restart[-1], "chains", "web", "rx") == sent_before_restart
    assert total(before_restart[-1], "services", "firewall", "rx") == sent_before_restart
