"""The single-host setup: onvm-mgr with two af_packet ports on lab veths,
firewall -> forward as NF containers, chain 'web' from port0 to port1.
Used by the demo and the tests."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils import names, nf_container

from .hugepages import ensure_free
from .manager import ManagerProcess
from .netns import VethPort, lab_ports

VERSION = "0.1.0"
DEFAULT_RULES = "default allow\n# web ports stay closed\ndeny proto udp dport 1000-1999\n"


def wait_until(cond: Callable[[], bool], guard: float = 60.0) -> bool:
    """Poll a condition; the guard only bounds a failure."""
    deadline = time.monotonic() + guard
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def nf_spec(host: str, nf: str, idx: int = 0, **kw: Any) -> nf_container.NFSpec:
    return nf_container.NFSpec(
        host=host,
        service=kw.pop("service", nf),
        image="onvm/%s:%s" % (nf, VERSION),
        name=names.container(host, nf, idx),
        **kw,
    )


@dataclass
class Chain:
    mgr: ManagerProcess
    ports: list[VethPort]
    fw: dict[str, Any]
    fwd: dict[str, Any]

    def nf(self, instance: int) -> dict[str, Any]:
        """The stats-area entry of an instance ({} once it is gone)."""
        with self.mgr.stats() as st:
            for nf in st.snapshot()["nfs"]:
                if nf["instance"] == instance:
                    return dict(nf)
        return {}

    def set_chain(self, services: list[str]) -> None:
        self.mgr.call(
            "chain_set",
            name="web",
            services=services,
            egress="port1",
            match={"in_port": "port0", "proto": "udp"},
        )


@contextlib.contextmanager
def firewall_forward(
    tag: str,
    client: Any,
    rules: str = DEFAULT_RULES,
    make_manager: Callable[[list[str]], ManagerProcess] | None = None,
) -> Iterator[Chain]:
    """Everything up, yielded; everything gone afterwards, pass or fail."""
    fd, rules_path = tempfile.mkstemp(prefix="onvm-fw-", suffix=".rules")
    with os.fdopen(fd, "w") as f:
        f.write(rules)
    mgr: ManagerProcess | None = None
    try:
        with lab_ports(tag, 2) as ports:
            specs = [p.vdev(i) for i, p in enumerate(ports)]
            if make_manager is not None:
                mgr = make_manager(specs)
            else:
                ensure_free(64)
                mgr = ManagerProcess("t" + tag, specs).start()
            try:
                fw = nf_container.start(
                    client, nf_spec(mgr.host, "firewall", files={rules_path: "/etc/onvm/fw.rules"})
                )
                fwd = nf_container.start(client, nf_spec(mgr.host, "forward"))
                chain = Chain(mgr, ports, fw, fwd)
                chain.set_chain(["firewall", "forward"])
                yield chain
            finally:
                nf_container.remove_host(client, mgr.host)
                mgr.stop()
    finally:
        os.unlink(rules_path)
