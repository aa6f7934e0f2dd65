"""Day-2, a rules file rewritten: the nf module (as deploy.yml runs it)
replaces the firewall as a rolling update -- the new instance registers,
the old one is drained with its flows moved at once, then stopped -- under
constant traffic: not a frame of the traffic both rule sets allow is lost,
and every frame sent after the module returns meets the new rules."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from ansible_collections.onvm.nfv.plugins.modules import nf
from ansible_collections.onvm.nfv.tests.unit.plugins.modules.module_runner import ModuleRunner
from onvm.lab import traffic
from onvm.lab.single_host import VERSION, firewall_forward

ALLOW_ALL = "default allow\n"
DENY_1000S = "default allow\ndeny proto udp dport 1000-1999\n"


@pytest.mark.dataplane
@pytest.mark.docker
def test_a_rewritten_rules_file_rolls_the_firewall_without_loss(
    tag: str, built: None, docker_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ModuleRunner(capsys)
    with firewall_forward(tag, docker_client, rules=ALLOW_ALL) as chain:
        (fw,) = nc.find(docker_client, chain.mgr.host, "firewall")
        rules_path = next(
            b.split(":", 1)[0] for b in fw.attrs["HostConfig"]["Binds"] if ":/etc/onvm/fw.rules:" in b
        )
        args = dict(
            host=chain.mgr.host,
            service="firewall",
            image="onvm/firewall:%s" % VERSION,
            files={rules_path: "/etc/onvm/fw.rules"},
        )
        assert run(nf.main, **args)["changed"] is False  # as it runs: nothing to do
        with open(rules_path, "w") as f:
            f.write(DENY_1000S)
        check = run(nf.main, check_mode=True, diff=True, **args)
        assert check["changed"] and check["replaced"] == [nc.instance_name(chain.mgr.host, "firewall", 0)]
        assert [c.name for c in nc.find(docker_client, chain.mgr.host, "firewall")] == check["replaced"]

        # constant traffic both rule sets allow (dports 3000-3999), through the change
        n, rate = 12_000, 1500.0  # 8 s: the module's run falls inside it
        rx = traffic.Receiver(chain.ports[1])
        result: dict[str, Any] = {}
        try:
            sender = traffic.send(chain.ports[0], n, dports="3000-3999", rate=rate, flow_len=10, wait=False)
            mod = threading.Thread(target=lambda: result.update(run(nf.main, **args)))
            time.sleep(1.0)  # traffic flows through the old instance first
            mod.start()
            mod.join(120)
            assert sender.wait(120) == 0
            during = rx.wait_for(n, timeout=10)
        finally:
            during = rx.stop()
        assert result["changed"] and result["replaced"] == check["replaced"]
        assert result["started"] == [nc.instance_name(chain.mgr.host, "firewall", 1)]
        assert (during["received"], during["dups"]) == (n, 0), "frames lost while rolling: %s" % during
        assert sender.returncode == 0 and mod.is_alive() is False
        # every frame after the module returned meets the new rules
        rx = traffic.Receiver(chain.ports[1])
        try:
            traffic.send(chain.ports[0], 1000, dports="1000-1999", rate=20_000, first=n)
            traffic.send(chain.ports[0], 1000, dports="2000-2999", rate=20_000, first=n + 1000)
            after = rx.wait_for(1000, timeout=10)
        finally:
            after = rx.stop()
        assert after["received"] == 1000  # the 2000s only: the 1000s are denied now
        assert run(nf.main, **args)["changed"] is False
