"""Network namespaces and veth pairs for lab ports.

A lab port is a veth pair: the root-side end is handed to onvm-mgr
(``net_af_packet`` on it), the other end sits in a namespace where a test
sends or receives.  Neither end has an address; IPv6 is off so the kernel
adds no chatter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from ansible_collections.onvm.nfv.plugins.module_utils import names

from .sh import run


@dataclass
class Namespace:
    name: str

    def create(self) -> Namespace:
        run("ip", "netns", "add", self.name)
        run("ip", "-n", self.name, "link", "set", "lo", "up")
        return self

    def delete(self) -> None:
        run("ip", "netns", "del", self.name, check=False)

    def exec_args(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]


@dataclass
class VethPort:
    """root-side ``name`` <-> ``peer`` inside namespace ``ns``."""

    name: str
    peer: str
    ns: Namespace
    created: bool = field(default=False, init=False)

    def create(self) -> VethPort:
        run("ip", "link", "add", self.name, "type", "veth", "peer", "name", self.peer, "netns", self.ns.name)
        self.created = True
        for args in (
            ["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % self.name],
            self.ns.exec_args("sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % self.peer),
        ):
            run(*args, check=False)
        run("ip", "link", "set", self.name, "up")
        run("ip", "-n", self.ns.name, "link", "set", self.peer, "up")
        return self

    def delete(self) -> None:
        if self.created:
            run("ip", "link", "del", self.name, check=False)
            self.created = False

    @classmethod
    def of(cls, host: str, index: int) -> VethPort:
        """Lab port ``index`` of ``host`` as the role onvm_host makes it
        (names.lab_port: ov<host><i> <-> ovp<host><i> in namespace onvm-<host>-n<i>)."""
        port = names.lab_port(host, index)
        return cls(port["iface"], port["peer"], Namespace(port["netns"]))

    def vdev(self, index: int) -> str:
        """The onvm-mgr --port argument for this veth."""
        return str(names.af_packet_vdev(index, self.name))


@contextlib.contextmanager
def lab_ports(tag: str, count: int) -> Iterator[list[VethPort]]:
    """``count`` veth ports, each with its peer in a namespace of its own,
    all named after ``tag``; removed on exit, even on failure."""
    made: list[VethPort] = []
    spaces: list[Namespace] = []
    try:
        for i in range(count):
            port = VethPort.of(tag, i)
            spaces.append(port.ns.create())
            made.append(port)
            port.create()
        yield made
    finally:
        for port in made:
            port.delete()
        for ns in spaces:
            ns.delete()
