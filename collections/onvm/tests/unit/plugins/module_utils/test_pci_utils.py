# SPDX-License-Identifier: BSD-3-Clause
"""module_utils/pci.py: addresses, interface lookup, onvm-mgr's own-NIC rule (through onvm-own), vdevs,
bind/unbind."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import pci
from ansible_collections.onvm.nfv.tests.unit.plugins.conftest import NetNs
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


def run(argv: list[str]) -> tuple[int, str, str]:
    p = subprocess.run(argv, capture_output=True, text=True, check=False)
    return p.returncode, p.stdout, p.stderr


def owner(netns: NetNs, spec: str, sysfs: str = "/sys", procfs: str = "/proc") -> str | None:
    """onvm-mgr's rule, run in the test's namespace (where /sys and /proc/net are its own)."""
    return pci.port_owner(run, netns.tool(), spec, sysfs, procfs)


@pytest.mark.skipif(socket.htonl(1) == 1, reason="the sample was taken on a little-endian host")
def test_routes_from_a_procfs_sample(tree: FakeTree, netns: NetNs) -> None:
    (tree.proc / "net" / "route").write_text(ROUTE)
    (tree.proc / "net" / "ipv6_route").write_text(IPV6_ROUTE)
    tree.add_iface("lab1")
    sysfs, procfs = str(tree.sys), str(tree.proc)
    why = owner(netns, "net_af_packet0,iface=eth0", sysfs, procfs)
    assert why == (
        "refusing interface 'eth0': it carries routes (default, 192.0.2.0/24, fd00::2/128) "
        "(only an interface with no address and no route may be taken)"
    )
    # No range is exempt: a route to 198.18.0.0/24 is a route (its multicast one is not).
    why = owner(netns, "net_af_packet0,iface=lab1", sysfs, procfs)
    assert why is not None and "it carries routes (198.18.0.0/24)" in why
    assert owner(netns, "net_af_packet0,iface=veth0", sysfs, procfs) is None
    assert owner(netns, "net_af_packet0,iface=veth0", sysfs, str(tree.base / "none")) is None


def test_addresses_and_routes_of_real_interfaces(netns: NetNs) -> None:
    """An interface of the namespace: free while it has only link-local
    addresses and routes, the machine's own as soon as it has any other."""
    netns.link("d0", up=True)
    vdev = "net_af_packet0,iface=d0,framecnt=8192"
    netns.addr("d0", "fe80::5/64")
    assert owner(netns, vdev) is None  # up, fe80::/64, ff00::/8: all exempt
    netns.addr("d0", "198.18.0.2/24")
    why = owner(netns, vdev)
    assert why is not None
    assert "it carries routes (198.18.0.0/24)" in why and "it has addresses (198.18.0.2)" in why
    netns.ip("addr", "flush", "dev", "d0", "scope", "global")
    assert owner(netns, vdev) is None
    netns.ip("route", "add", "default", "dev", "d0")
    assert "it carries routes (default)" in (owner(netns, vdev) or "")
    netns.ip("route", "flush", "dev", "d0")
    netns.addr("d0", "fd00::7/64")
    why = owner(netns, vdev) or ""
    assert "it carries routes (fd00::/64, fd00::7/128); it has addresses (fd00::7)" in why
    netns.ip("addr", "flush", "dev", "d0", "scope", "global")
    for i in range(6):
        netns.addr("d0", "10.0.0.%d/32" % (i + 1))
    why = owner(netns, vdev) or ""
    assert "it has addresses (10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, ...)" in why, why


def test_loopback_and_missing_interfaces(netns: NetNs) -> None:
    assert (owner(netns, "net_pcap0,rx_iface=lo,tx_iface=lo") or "").startswith(
        "refusing interface 'lo': it is the loopback interface"
    )
    with pytest.raises(pci.PciError, match="interface 'nope0' does not exist"):
        owner(netns, "net_af_packet0,iface=nope0")
    assert owner(netns, "net_tap0,iface=nope0") is None  # tap makes its own
    assert owner(netns, "net_null0") is None
    with pytest.raises(pci.PciError, match="unknown port 'eth0'"):
        owner(netns, "eth0")


def test_a_pci_device_is_refused_for_the_interface_it_backs(tree: FakeTree, netns: NetNs) -> None:
    sysfs, procfs = str(tree.sys), str(tree.proc)
    why = owner(netns, "0000:00:03.0", sysfs, procfs)
    assert why == (
        "refusing PCI device 0000:00:03.0: it backs interface 'eth0' and it is up (the machine's own NIC)"
    )
    assert owner(netns, "00:04.0", sysfs, procfs) is None  # ens4: down, no address
    netns.link("ens4")
    netns.addr("ens4", "192.0.2.9/32")
    assert owner(netns, "00:04.0", sysfs, procfs) == (
        "refusing PCI device 0000:00:04.0: it backs interface 'ens4' and it has addresses (192.0.2.9) "
        "(the machine's own NIC)"
    )
    assert owner(netns, "0000:00:04.1", sysfs, procfs) is None  # backs no interface
    with pytest.raises(pci.PciError, match=r"unknown PCI device '0000:00:1f\.7'"):
        owner(netns, "0000:00:1f.7", sysfs, procfs)


def test_the_tool_as_an_operator_runs_it(onvm_own: str) -> None:
    out = subprocess.run([onvm_own, "--help"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: onvm-own") and "exit status" in out
    assert subprocess.run([onvm_own], capture_output=True, check=False).returncode == 64
    assert subprocess.run([onvm_own, "--bogus", "x"], capture_output=True, check=False).returncode == 64
    p = subprocess.run([onvm_own, "net_af_packet0,iface=lo"], capture_output=True, text=True, check=False)
    assert p.returncode == 1 and "loopback" in p.stdout


def test_parse_vdev() -> None:
    v = pci.parse_vdev(" net_af_packet0, iface=veth0 ,framecnt=8192")
    assert v.spec == "net_af_packet0,iface=veth0,framecnt=8192"
    assert (v.name, v.driver) == ("net_af_packet0", "net_af_packet")
    assert pci.parse_vdev("net_pcap1,rx_iface=a,tx_iface=b").args == {"rx_iface": "a", "tx_iface": "b"}
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
    root = str(tree.sys)
    asked: list[str] = []

    def owner(addr: str) -> str | None:
        asked.append(addr)
        return "refusing PCI device %s: ..." % addr if addr == "0000:00:03.0" else None

    with pytest.raises(pci.PciError, match="state=gone"):
        pci.plan_device(root, "00:04.0", "gone", None, owner)
    with pytest.raises(pci.PciError, match="driver=e1000: not a DPDK driver"):
        pci.plan_device(root, "00:04.0", "bound", "e1000", owner)
    assert asked == []
    # The machine's NIC is refused before the driver is even looked at.
    with pytest.raises(pci.PciError, match=r"refusing PCI device 0000:00:03\.0"):
        pci.plan_device(root, "00:03.0", "bound", "vfio-pci", owner)
    with pytest.raises(pci.PciError, match="driver=vfio-pci: the driver is not loaded"):
        pci.plan_device(root, "00:04.0", "bound", "vfio-pci", owner)
    assert asked == ["0000:00:03.0", "0000:00:04.0"]
    p = pci.plan_device(root, "00:04.1", "unbound", None, owner)
    assert not p.changes and p.expected is None
