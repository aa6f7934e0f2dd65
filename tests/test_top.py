"""`onvm top` driven in tmux, as an operator would see it: against a host
with a manager, an NF, its scaler and traffic, the screen shows the host,
the instance with a non-zero receive rate, and a scale event as it comes."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue
from onvm.lab import traffic
from onvm.lab.manager import REPO, ManagerProcess, binary
from onvm.lab.netns import lab_ports
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import wait_until


class Tmux:
    """A tmux server of its own (-L), one session running ``argv``."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.base = ["tmux", "-L", name]
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", name, "-x", "160", "-y", "60", *argv], check=True
        )
        self.name = name

    def screen(self) -> str:
        out = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return out.stdout

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


@pytest.fixture
def tmux_top(redis_server: RedisServer, tag: str) -> Iterator[Tmux]:
    t = Tmux("onvmtop" + tag, [os.path.join(REPO, ".venv/bin/onvm"), "top", "--redis", redis_server.url])
    try:
        yield t
    finally:
        t.kill()


def row(screen: str, *cells: str) -> list[str] | None:
    """The cells of the first table row that starts with ``cells``."""
    for line in screen.splitlines():
        parts = [p.strip() for p in re.split(r"[│┃|]", line) if p.strip()]
        if parts[: len(cells)] == list(cells):
            return parts
    return None


@pytest.mark.dataplane
def test_onvm_top_shows_live_rates_and_scale_events(
    tag: str, managers: Callable[..., ManagerProcess], redis_server: RedisServer, tmux_top: Tmux
) -> None:
    with lab_ports(tag, 2) as ports:
        mgr = managers([p.vdev(i) for i, p in enumerate(ports)])
        h = mgr.host
        procs = [
            subprocess.Popen(
                [binary("forward"), "--host", h, "--service", "fwd"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [os.path.join(REPO, ".venv/bin/onvm-scaler"), "--host", h, "--redis", redis_server.url],
                stderr=subprocess.DEVNULL,
            ),
        ]
        sender = None
        try:
            assert wait_until(lambda: any(n["service"] == "fwd" for n in mgr.call("nf_list")["nfs"]), 20)
            inst = str(next(n["instance"] for n in mgr.call("nf_list")["nfs"] if n["service"] == "fwd"))
            mgr.call("chain_set", name="c", services=["fwd"], egress="port1", match={"in_port": "port0"})
            # the host and its idle instance appear
            assert wait_until(lambda: row(tmux_top.screen(), "fwd", h, inst) is not None, 20), (
                tmux_top.screen()
            )
            hosts = row(tmux_top.screen(), h)
            assert hosts is not None and hosts[3] == "1"  # host, cpus, free cores, instances
            # under traffic the instance's receive rate on screen is not 0
            sender = traffic.send(ports[0], 200_000, dports="1000-1999", rate=20_000, wait=False)

            def rx_mpps() -> float:
                cells = row(tmux_top.screen(), "fwd", h, inst)
                return float(cells[3]) if cells else 0.0

            assert wait_until(lambda: rx_mpps() > 0.001, 20), tmux_top.screen()
            # a scale event shows up as it comes
            scale_queue.event(
                redis_server.client(),
                "scale-out",
                int(time.time() * 1000),
                service="fwd",
                host=h,
                container="c-" + tag,
            )
            assert wait_until(lambda: "container=c-" + tag in tmux_top.screen(), 10), tmux_top.screen()
        finally:
            if sender is not None:
                sender.kill()
                sender.wait()
            for p in procs:
                p.terminate()
                p.wait(10)
