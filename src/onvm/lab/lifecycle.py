"""A deployed host's life, one event after another, and what each process
costs once the event is over: the manager must fall back to its idle cost
within a second of every one of them (tests/test_lifecycle.py asserts it,
bench/idle.py measures it on a host deployed by deploy.yml).

The events, in this order (each waits for its own effect before the next):
  burst              10,000 frames at 100,000 a second through the chain
  nf-started         one more instance of the service, started by hand
  scale-in           the scaler drains and stops the one too many
  scale-out          a scale-out request on the host's queue, served by its scaler
  scale-in-again     the scaler drains and stops it again (surplus)
  nf-killed          an instance's process killed -9; Docker restarts it
  container-restart  `docker restart` of another NF's container
  chain-swapped      the chain set again (a new version, the old one retired)
  manager-restarted  the manager stopped and started; NFs and chain come back
  fabric-peer-gone   the manager at the other end of a fabric port killed -9
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils import chains as ch
from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from ansible_collections.onvm.nfv.plugins.module_utils import scale_queue
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlClient, CtlError
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import StatsError, StatsReader, default_path

from . import cpu, traffic
from .netns import VethPort
from .single_host import wait_until

SETTLE = 1.0  # s after an event before its cost is measured ("within 1 s")
MEASURE = 2.0  # s the cost is measured over


@dataclass
class Host:
    """What the walk needs of a running host."""

    name: str
    docker: Any
    redis: Any  # the global view's Redis (scale events)
    ingress: VethPort
    service: str  # the one scaled and killed (firewall)
    conf: nc.ServiceConf
    other: str  # another service of the chain (forward)
    chain: str  # the chain through both (web)
    restart_manager: Callable[[], None]
    scaler_pid: Callable[[], int]
    kill_peer: Callable[[], None] | None = None  # the far manager of a fabric port
    timeout: float = 60.0
    sent: int = field(default=0, init=False)
    # scale events of each kind the walk has waited for so far (the scaler
    # may act while the step before is still being measured)
    taken: dict[str, int] = field(default_factory=dict, init=False)

    def snapshot(self) -> dict[str, Any]:
        with StatsReader(default_path(self.name)) as st:
            snap: dict[str, Any] = st.snapshot()
        return snap

    def manager_pid(self) -> int:
        """The manager's pid (0 while there is no stats area to say)."""
        try:
            return int(self.snapshot()["mgr_pid"])
        except StatsError:
            return 0

    def running(self, service: str) -> list[dict[str, Any]]:
        try:
            nfs = self.snapshot()["nfs"]
        except StatsError:
            return []
        return [n for n in nfs if n["service"] == service and n["state"] == "running" and not n["remote"]]

    def events(self, kind: str) -> list[str]:
        return [e["id"] for e in scale_queue.events(self.redis, 1000) if e["kind"] == kind]

    def next_event(self, kind: str) -> None:
        """Wait for one more scale event of ``kind`` than the walk has taken."""
        n = self.taken.get(kind, 0)
        _until(lambda: len(self.events(kind)) > n, self, "the scaler's %s" % kind)
        self.taken[kind] = n + 1

    def chain_in(self) -> int:
        return next((c["rx"] for c in self.snapshot()["chains"] if c["chain"] == self.chain), 0)

    def pids(self) -> dict[str, int]:
        """The processes whose cost is measured: manager, scaler, each NF."""
        out = {"onvm-mgr": self.manager_pid(), "onvm-scaler": self.scaler_pid()}
        for n in self.snapshot()["nfs"]:
            if n["state"] == "running" and not n["remote"] and n["pid"] > 0:
                out["%s/%d" % (n["service"], n["instance"])] = n["pid"]
        return out


def cost(pids: dict[str, int], seconds: float = MEASURE) -> dict[str, float]:
    """Share of one core each process used over ``seconds`` (a process gone
    meanwhile: left out), to 4 places."""
    return {n: round(v, 4) for n, v in cpu.shares(pids, seconds).items()}


def _until(cond: Callable[[], bool], host: Host, what: str) -> None:
    if not wait_until(cond, host.timeout):
        raise AssertionError("%s: not within %.0f s" % (what, host.timeout))


# ---- the events ------------------------------------------------------------


def burst(h: Host, n: int = 10_000) -> None:
    before = h.chain_in()
    traffic.send(h.ingress, n, dports="1000-4999", rate=100_000, first=h.sent)
    h.sent += n
    _until(lambda: h.chain_in() - before == n, h, "the burst counted into chain %s" % h.chain)


def nf_started(h: Host) -> None:
    have = len(h.running(h.service))
    taken = [c.name for c in nc.find(h.docker, h.name, h.service)]
    i = 0
    while nc.instance_name(h.name, h.service, i) in taken:
        i += 1
    nc.start(h.docker, nc.spec_for(h.name, h.service, h.conf, i))
    _until(lambda: len(h.running(h.service)) == have + 1, h, "one more %s" % h.service)


def scale_in(h: Host) -> None:
    h.next_event("scale-in")
    _until(lambda: len(h.running(h.service)) == 1, h, "one %s left" % h.service)


def scale_out(h: Host) -> None:
    scale_queue.enqueue(h.redis, scale_queue.new_request(h.service, h.name, h.name))
    h.next_event("scale-out")
    _until(lambda: len(h.running(h.service)) == 2, h, "two %s" % h.service)


def nf_killed(h: Host) -> None:
    victim = h.running(h.service)[0]
    os.kill(victim["pid"], signal.SIGKILL)
    _until(
        lambda: any(n["pid"] != victim["pid"] for n in h.running(h.service)),
        h,
        "%s back after kill -9 (Docker's restart policy)" % h.service,
    )


def container_restarted(h: Host) -> None:
    (old,) = h.running(h.other)
    (container,) = [c for c in nc.find(h.docker, h.name, h.other) if c.status == "running"]
    container.restart(timeout=5)
    _until(
        lambda: [n["pid"] for n in h.running(h.other)] not in ([], [old["pid"]]), h, "%s restarted" % h.other
    )


def chain_swapped(h: Host) -> None:
    with CtlClient(h.name) as ctl:
        spec = ch.current(ctl)[h.chain]
        ctl.call("chain_set", name=h.chain, **spec)
    burst(h, 1000)


def manager_restarted(h: Host) -> None:
    old = h.manager_pid()
    h.restart_manager()

    def back() -> bool:
        try:
            with CtlClient(h.name) as ctl:
                have = ch.current(ctl)
        except (CtlError, OSError):
            return False
        return h.chain in have and len(h.running(h.service)) >= 1 and len(h.running(h.other)) == 1

    _until(lambda: h.manager_pid() not in (0, old), h, "a new manager")
    _until(back, h, "NFs and chain back on the restarted manager")
    burst(h, 1000)


def fabric_peer_gone(h: Host) -> None:
    assert h.kill_peer is not None
    h.kill_peer()


STEPS: tuple[tuple[str, Callable[[Host], None]], ...] = (
    ("burst", burst),
    ("nf-started", nf_started),
    ("scale-in", scale_in),
    ("scale-out", scale_out),
    ("scale-in-again", scale_in),
    ("nf-killed", nf_killed),
    ("container-restart", container_restarted),
    ("chain-swapped", chain_swapped),
    ("manager-restarted", manager_restarted),
    ("fabric-peer-gone", fabric_peer_gone),
)


def walk(h: Host, after: Callable[[str, dict[str, float], dict[str, Any]], None]) -> None:
    """Measure the fresh host, then each event in turn: ``after(step,
    shares, snapshot)`` once the event is over (SETTLE s later, over
    MEASURE s)."""
    time.sleep(SETTLE)
    after("fresh", cost(h.pids()), h.snapshot())
    for name, step in STEPS:
        if name == "fabric-peer-gone" and h.kill_peer is None:
            continue
        step(h)
        time.sleep(SETTLE)
        after(name, cost(h.pids()), h.snapshot())
