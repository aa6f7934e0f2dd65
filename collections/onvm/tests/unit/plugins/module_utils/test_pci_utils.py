# SPDX-License-Identifier: BSD-3-Clause
"""module_utils/pci.py: addresses, interface lookup, routes, netlink parsing, vdevs, bind/unbind."""

from __future__ import annotations

import ipaddress
import socket
import struct
from pathlib import Path

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import pci
from ansible_collections.onvm.nfv.tests.unit.plugins.module_utils.fakesys import FakePciKernel, FakeTree


@pytest.mark.parametrize(
    ("given", "full"),
    [
        ("00:03.0", "0000:00:03.0"),
        ("0000:00:03.0", "0000:00:03.0"),
        ("0000:AF:1F.7", "0000:af:1f.7"),
        (" 3b:00.1 ", "0000:3b:00.1"),
        ("10000:01:00.0", "10000:01:00.0"),
    ],
)
def test_normalize_address(given: str, full: str) -> None:
    assert pci.normalize_address(given) == full


@pytest.mark.parametrize("bad", ["", "eth0", "00:03", "00:20.0", "00:03.8", "0:00:03.0", "000:00:03.0"])
def test_normalize_address_refuses(bad: str) -> None:
    with pytest.raises(pci.PciError, match="not a PCI address"):
        pci.normalize_address(bad)


@pytest.fixture
def tree(tmp_path: Path) -> FakeTree:
    t = FakeTree(tmp_path)
    t.add_device("0000:00:03.0", driver="virtio-pci", iface="eth0", virtio=True, operstate="up")
    t.add_device("0000:00:04.0", driver="e1000", iface="ens4")
    t.add_device("0000:00:04.1")
    t.add_iface("veth0", operstate="up")
    return t


def test_interfaces_of_device_virtio_and_direct(tree: FakeTree) -> None:
    root = str(tree.sys)
    assert pci.interfaces_of_device(root, "0000:00:03.0") == ["eth0"]
    assert pci.interfaces_of_device(root, "0000:00:04.0") == ["ens4"]
    assert pci.interfaces_of_device(root, "0000:00:04.1") == []


def test_pci_address_of_interface(tree: FakeTree) -> None:
    root = str(tree.sys)
    assert pci.pci_address_of_interface(root, "eth0") == "0000:00:03.0"
    assert pci.pci_address_of_interface(root, "ens4") == "0000:00:04.0"
    assert pci.pci_address_of_interface(root, "veth0") is None
    assert pci.pci_address_of_interface(root, "nope") is None


def test_current_driver_and_override(tree: FakeTree) -> None:
    root = str(tree.sys)
    assert pci.current_driver(root, "0000:00:03.0") == "virtio-pci"
    assert pci.current_driver(root, "0000:00:04.1") is None
    assert pci.driver_override(root, "0000:00:03.0") is None
    assert pci.iommu_group(root, "0000:00:03.0") is None


# A copy of this kind of machine's /proc/net/route and ipv6_route (little-endian host).
ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "lab1\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)
IPV6_ROUTE = (
    "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0\n"
    "fd000000000000000000000000000002 80 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000000 00000003 00000000 80200001     eth0\n"
    "ff000000000000000000000000000000 08 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000003 00000000 00000001     lab1\n"
)


@pytest.mark.skipif(socket.htonl(1) == 1, reason="the sample was taken on a little-endian host")
def test_routes_of(tree: FakeTree) -> None:
    (tree.proc / "net" / "route").write_text(ROUTE)
    (tree.proc / "net" / "ipv6_route").write_text(IPV6_ROUTE)
    proc = str(tree.proc)
    assert pci.routes_of(proc, "eth0") == ["default", "192.0.2.0/24", "fd00::2/128"]
    assert pci.routes_of(proc, "lab1") == []  # 198.18.0.0/24 and multicast only
    assert pci.routes_of(proc, "veth0") == []


def test_routes_of_without_procfs(tmp_path: Path) -> None:
    assert pci.routes_of(str(tmp_path / "none"), "eth0") == []


def _nlmsg(mtype: int, body: bytes) -> bytes:
    msg = struct.pack("=IHHII", 16 + len(body), mtype, 2, 1, 0) + body
    return msg + b"\0" * (-len(msg) % 4)


def _rtattr(atype: int, data: bytes) -> bytes:
    attr = struct.pack("=HH", 4 + len(data), atype) + data
    return attr + b"\0" * (-len(attr) % 4)


def _newaddr(family: int, index: int, attrs: bytes) -> bytes:
    return _nlmsg(20, struct.pack("=BBBBI", family, 24, 0, 0, index) + attrs)


def test_parse_addr_dump() -> None:
    v4 = ipaddress.IPv4Address("192.0.2.2")
    peer = ipaddress.IPv4Address("192.0.2.99")
    v6 = ipaddress.IPv6Address("fd00::2")
    data = (
        _newaddr(socket.AF_INET, 4, _rtattr(1, peer.packed) + _rtattr(2, v4.packed) + _rtattr(3, b"eth0\0"))
        + _newaddr(socket.AF_INET6, 4, _rtattr(1, v6.packed))
        + _newaddr(socket.AF_INET, 1, _rtattr(2, ipaddress.IPv4Address("127.0.0.1").packed))
    )
    assert pci.parse_addr_dump(data, 4) == ([v4, v6], False)
    assert pci.parse_addr_dump(_nlmsg(3, struct.pack("=i", 0)), 4) == ([], True)
    with pytest.raises(OSError):
        pci.parse_addr_dump(_nlmsg(2, struct.pack("=i", -1) + b"\0" * 16), 4)


def test_interface_addresses_of_loopback() -> None:
    """Real netlink: the loopback has 127.0.0.1 (in this and any namespace)."""
    assert ipaddress.IPv4Address("127.0.0.1") in pci.interface_addresses("lo")
    assert pci.interface_addresses("no-such-if0") == []


def test_foreign_addresses() -> None:
    table = {
        "x": [ipaddress.ip_address(a) for a in ("198.18.0.2", "198.19.255.1", "127.0.0.1", "fe80::1", "::1")],
        "y": [ipaddress.ip_address(a) for a in ("198.20.0.1", "fd00::1")],
    }
    assert pci.foreign_addresses("x", table.__getitem__) == []
    assert pci.foreign_addresses("y", table.__getitem__) == ["198.20.0.1", "fd00::1"]


def test_device_in_use_names_the_interface(tree: FakeTree) -> None:
    def none(iface: str) -> list[pci.IPAddress]:
        return []

    why = pci.device_in_use(str(tree.sys), str(tree.proc), "0000:00:03.0", none)
    assert why is not None and "'eth0'" in why and "it is up" in why
    assert pci.device_in_use(str(tree.sys), str(tree.proc), "0000:00:04.0", none) is None


def test_parse_vdev() -> None:
    v = pci.parse_vdev(" net_af_packet0, iface=veth0 ,framecnt=8192")
    assert v.spec == "net_af_packet0,iface=veth0,framecnt=8192"
    assert (v.name, v.driver) == ("net_af_packet0", "net_af_packet")
    assert v.interfaces() == ["veth0"]
    assert pci.parse_vdev("net_pcap1,rx_iface=a,tx_iface=b").interfaces() == ["a", "b"]
    assert pci.parse_vdev("net_null0").args == {}
    for bad in ("eth0", "net_,x=1", "net_memif0,=x", "net_memif0,role"):
        with pytest.raises(pci.PciError):
            pci.parse_vdev(bad)


def test_bind_and_unbind_sequence(tree: FakeTree, monkeypatch: pytest.MonkeyPatch) -> None:
    tree.add_driver("uio_pci_generic")
    kernel = FakePciKernel(tree, kernel_drivers={"0000:00:04.0": "e1000"})
    monkeypatch.setattr(pci, "write_attr", kernel.write_attr)
    root = str(tree.sys)
    pci.bind(root, "0000:00:04.0", "uio_pci_generic")
    assert pci.current_driver(root, "0000:00:04.0") == "uio_pci_generic"
    assert pci.driver_override(root, "0000:00:04.0") is None
    names = [Path(p).name for p, _value in kernel.writes]
    assert names == ["driver_override", "unbind", "bind", "driver_override"]
    kernel.writes.clear()
    pci.bind(root, "0000:00:04.0", "uio_pci_generic")
    assert kernel.writes == []
    pci.unbind(root, "0000:00:04.0")
    assert pci.current_driver(root, "0000:00:04.0") == "e1000"
    assert [Path(p).name for p, _value in kernel.writes] == ["unbind", "drivers_probe"]
    kernel.writes.clear()
    pci.unbind(root, "0000:00:04.0")
    assert kernel.writes == []


def test_plan_device_checks_in_order(tree: FakeTree) -> None:
    root, proc = str(tree.sys), str(tree.proc)
    with pytest.raises(pci.PciError, match="state=gone"):
        pci.plan_device(root, proc, "00:04.0", "gone", None)
    with pytest.raises(pci.PciError, match="driver=e1000: not a DPDK driver"):
        pci.plan_device(root, proc, "00:04.0", "bound", "e1000")
    # The machine's NIC is refused before the driver is even looked at.
    with pytest.raises(pci.PciError, match=r"refusing PCI device 0000:00:03\.0"):
        pci.plan_device(root, proc, "00:03.0", "bound", "vfio-pci", lambda i: [])
    with pytest.raises(pci.PciError, match="driver=vfio-pci: the driver is not loaded"):
        pci.plan_device(root, proc, "00:04.0", "bound", "vfio-pci", lambda i: [])
    p = pci.plan_device(root, proc, "00:04.1", "unbound", None)
    assert not p.changes and p.expected is None
