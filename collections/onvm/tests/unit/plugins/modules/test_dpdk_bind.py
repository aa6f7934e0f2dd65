# SPDX-License-Identifier: BSD-3-Clause
"""onvm.nfv.dpdk_bind against a fake sysfs tree whose "kernel" reacts to writes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import pci
from ansible_collections.onvm.nfv.plugins.modules import dpdk_bind
from ansible_collections.onvm.nfv.tests.unit.plugins.conftest import NetNs
from ansible_collections.onvm.nfv.tests.unit.plugins.module_utils.fakesys import FakePciKernel, FakeTree
from ansible_collections.onvm.nfv.tests.unit.plugins.modules.module_runner import ModuleRunner

HOST_NIC = "0000:00:03.0"  # virtio, eth0 up with the default route
FREE_NIC = "0000:00:04.0"  # virtio, ens4 down, no address
DIRECT_NIC = "0000:00:05.0"  # ens5 directly under the device, up
NO_DRIVER = "0000:00:06.0"


class Lab:
    def __init__(self, tree: FakeTree, kernel: FakePciKernel, netns: NetNs, runner: ModuleRunner):
        self.tree = tree
        self.kernel = kernel
        self.netns = netns
        self.runner = runner

    def run(self, check_mode: bool = False, diff: bool = False, **args: Any) -> dict[str, Any]:
        args.setdefault("sysfs_root", str(self.tree.sys))
        args.setdefault("procfs_root", str(self.tree.proc))
        args.setdefault("onvm_own", self.netns.tool())
        return self.runner(dpdk_bind.main, check_mode=check_mode, diff=diff, **args)

    def driver_of(self, addr: str) -> str | None:
        link = self.tree.device_path(addr) / "driver"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def override_of(self, addr: str) -> str:
        return (self.tree.device_path(addr) / "driver_override").read_text().strip()


@pytest.fixture
def lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], netns: NetNs
) -> Lab:
    tree = FakeTree(tmp_path)
    tree.add_driver("vfio-pci")
    tree.add_device(HOST_NIC, driver="virtio-pci", iface="eth0", virtio=True, operstate="up")
    tree.add_route("eth0")
    tree.add_route("eth0", "192.0.2.0/24")
    tree.add_device(FREE_NIC, driver="virtio-pci", iface="ens4", virtio=True, iommu_group=7)
    tree.add_device(DIRECT_NIC, driver="e1000", iface="ens5", operstate="up")
    tree.add_device(NO_DRIVER)
    tree.add_iface("veth-lab1", operstate="up")
    kernel = FakePciKernel(tree, kernel_drivers={FREE_NIC: "virtio-pci", DIRECT_NIC: "e1000"})
    monkeypatch.setattr(pci, "write_attr", kernel.write_attr)
    # Devices and routes come from the fake trees; addresses from the
    # interfaces of the same names in a namespace of the test's own.
    for iface in ("eth0", "ens4", "ens5", "veth-lab1"):
        netns.link(iface)
    netns.addr("eth0", "192.0.2.15/24")
    return Lab(tree, kernel, netns, ModuleRunner(capsys))


def test_bind_follows_dpdk_devbind_sequence(lab: Lab) -> None:
    r = lab.run(device=FREE_NIC, driver="vfio-pci")
    assert not r.get("failed"), r
    assert r["changed"] is True
    assert r["driver_before"] == "virtio-pci"
    assert r["driver"] == "vfio-pci"
    assert r["port"] == r["device"] == FREE_NIC
    assert r["interfaces"] == ["ens4"]
    assert r["iommu_group"] == 7
    assert lab.driver_of(FREE_NIC) == "vfio-pci"
    drivers = str(lab.tree.sys / "bus" / "pci" / "drivers")
    dev = str(lab.tree.sys / "bus" / "pci" / "devices" / FREE_NIC)
    assert lab.kernel.writes == [
        (os.path.join(dev, "driver_override"), "vfio-pci"),
        (os.path.join(drivers, "virtio-pci", "unbind"), FREE_NIC),
        (os.path.join(drivers, "vfio-pci", "bind"), FREE_NIC),
        (os.path.join(dev, "driver_override"), "\n"),
    ]
    assert lab.override_of(FREE_NIC) == "(null)"


def test_rebind_is_idempotent(lab: Lab) -> None:
    assert lab.run(device=FREE_NIC, driver="vfio-pci")["changed"] is True
    n = len(lab.kernel.writes)
    r = lab.run(device="00:04.0", driver="vfio-pci")
    assert r["changed"] is False
    assert r["driver"] == r["driver_before"] == "vfio-pci"
    assert len(lab.kernel.writes) == n


def test_device_without_driver_is_bound(lab: Lab) -> None:
    r = lab.run(device=NO_DRIVER, driver="vfio-pci")
    assert r["changed"] is True and r["driver_before"] is None and r["driver"] == "vfio-pci"
    assert not any(path.endswith("unbind") for path, _value in lab.kernel.writes)


def test_unbind_gives_the_device_back_to_the_kernel(lab: Lab) -> None:
    lab.run(device=FREE_NIC, driver="vfio-pci")
    r = lab.run(device=FREE_NIC, state="unbound", diff=True)
    assert r["changed"] is True
    assert r["driver_before"] == "vfio-pci"
    assert r["driver"] == "virtio-pci"
    assert lab.driver_of(FREE_NIC) == "virtio-pci"
    assert r["diff"]["before"] == "driver: vfio-pci\n"
    again = lab.run(device=FREE_NIC, state="unbound")
    assert again["changed"] is False
    assert again["driver"] == "virtio-pci"


def test_unbound_leaves_a_kernel_driver_alone(lab: Lab) -> None:
    # Even the host NIC: nothing would change, so there is nothing to refuse.
    r = lab.run(device=HOST_NIC, state="unbound")
    assert not r.get("failed") and r["changed"] is False
    assert lab.kernel.writes == []


def test_check_mode_changes_nothing(lab: Lab) -> None:
    r = lab.run(device=FREE_NIC, driver="vfio-pci", check_mode=True, diff=True)
    assert r["changed"] is True
    assert r["driver"] == "vfio-pci"
    assert r["diff"] == {
        "before_header": "PCI device %s" % FREE_NIC,
        "after_header": "PCI device %s" % FREE_NIC,
        "before": "driver: virtio-pci\n",
        "after": "driver: vfio-pci\n",
    }
    assert lab.kernel.writes == []
    assert lab.driver_of(FREE_NIC) == "virtio-pci"
    assert lab.override_of(FREE_NIC) == "(null)"


def test_unknown_device(lab: Lab) -> None:
    r = lab.run(device="0000:00:09.0", driver="vfio-pci")
    assert r["failed"] is True
    assert "device=0000:00:09.0" in r["msg"] and "no such PCI device" in r["msg"]
    assert lab.kernel.writes == []


def test_malformed_address(lab: Lab) -> None:
    r = lab.run(device="eth0", driver="vfio-pci")
    assert r["failed"] is True
    assert r["msg"].startswith("device=") and "not a PCI address" in r["msg"]


def test_driver_not_loaded(lab: Lab) -> None:
    r = lab.run(device=FREE_NIC, driver="uio_pci_generic")
    assert r["failed"] is True
    assert "driver=uio_pci_generic" in r["msg"] and "not loaded" in r["msg"]
    assert lab.kernel.writes == []
    assert lab.driver_of(FREE_NIC) == "virtio-pci"


def test_driver_not_a_dpdk_driver(lab: Lab) -> None:
    r = lab.run(device=FREE_NIC, driver="e1000")
    assert r["failed"] is True
    assert "driver" in r["msg"] and "vfio-pci" in r["msg"]


def test_bound_needs_a_driver(lab: Lab) -> None:
    r = lab.run(device=FREE_NIC)
    assert r["failed"] is True and "driver is required" in r["msg"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_refuses_the_host_nic_virtio_layout(lab: Lab, check_mode: bool) -> None:
    r = lab.run(device=HOST_NIC, driver="vfio-pci", check_mode=check_mode)
    assert r["failed"] is True
    assert "refusing PCI device %s" % HOST_NIC in r["msg"]
    assert "'eth0'" in r["msg"] and "up" in r["msg"]
    assert lab.kernel.writes == []
    assert lab.driver_of(HOST_NIC) == "virtio-pci"


@pytest.mark.parametrize("check_mode", [False, True])
def test_refuses_an_up_interface_directly_on_the_device(lab: Lab, check_mode: bool) -> None:
    r = lab.run(device=DIRECT_NIC, driver="vfio-pci", check_mode=check_mode)
    assert r["failed"] is True
    assert "'ens5'" in r["msg"] and "it is up" in r["msg"]
    assert lab.kernel.writes == []


def test_refuses_a_down_interface_with_a_route(lab: Lab) -> None:
    lab.tree.add_route("ens4", "10.9.0.0/16")
    r = lab.run(device=FREE_NIC, driver="vfio-pci", check_mode=True)
    assert r["failed"] is True and "routes (10.9.0.0/16)" in r["msg"]


def test_refuses_a_down_interface_with_an_ipv6_route(lab: Lab) -> None:
    lab.tree.add_route6("ens4", "fd00" + "0" * 28, 64)
    r = lab.run(device=FREE_NIC, driver="vfio-pci", check_mode=True)
    assert r["failed"] is True and "fd00::/64" in r["msg"]


def test_link_local_and_multicast_do_not_count(lab: Lab) -> None:
    lab.tree.add_route6("ens4", "fe80" + "0" * 28, 64)
    lab.tree.add_route6("ens4", "ff00" + "0" * 28, 8)
    lab.netns.addr("ens4", "fe80::5/64")
    r = lab.run(device=FREE_NIC, driver="vfio-pci")
    assert not r.get("failed"), r
    assert r["driver"] == "vfio-pci"


@pytest.mark.parametrize("addr", ["10.0.0.7/32", "198.18.0.2/24", "fd00::7/64"])
def test_refuses_a_down_interface_with_an_address(lab: Lab, addr: str) -> None:
    """Any address but loopback and link-local: the lab's range is not exempt
    (the lab's ports carry no address)."""
    lab.netns.addr("ens4", addr)
    r = lab.run(device=FREE_NIC, driver="vfio-pci", check_mode=True)
    assert r["failed"] is True and "it has addresses (%s)" % addr.split("/")[0] in r["msg"], r
    assert lab.kernel.writes == []


def test_refuses_an_interface_with_a_lab_route(lab: Lab) -> None:
    lab.tree.add_route("ens4", "198.18.1.0/24")
    r = lab.run(device=FREE_NIC, driver="vfio-pci", check_mode=True)
    assert r["failed"] is True and "routes (198.18.1.0/24)" in r["msg"], r


def test_without_the_tool_the_module_says_what_is_missing(lab: Lab) -> None:
    r = lab.run(device=FREE_NIC, driver="vfio-pci", onvm_own=str(lab.tree.base / "nowhere" / "onvm-own"))
    assert r["failed"] is True and "onvm-own" in r["msg"], r
    assert lab.kernel.writes == []


def test_failed_bind_gives_the_device_back(lab: Lab) -> None:
    lab.kernel.refuse.add("vfio-pci")
    r = lab.run(device=FREE_NIC, driver="vfio-pci")
    assert r["failed"] is True
    assert "binding %s to vfio-pci failed" % FREE_NIC in r["msg"]
    assert "given back to virtio-pci" in r["msg"]
    assert r["driver"] == "virtio-pci"
    assert lab.driver_of(FREE_NIC) == "virtio-pci"
    assert lab.override_of(FREE_NIC) == "(null)"


def test_vdev_changes_nothing_and_returns_the_port(lab: Lab) -> None:
    spec = "net_af_packet0,iface=veth-lab1,framecnt=8192"
    r = lab.run(vdev=spec)
    assert not r.get("failed"), r
    assert r["changed"] is False
    assert r["kind"] == "vdev" and r["port"] == spec
    assert r["vdev"] == {
        "name": "net_af_packet0",
        "driver": "net_af_packet",
        "args": {"iface": "veth-lab1", "framecnt": "8192"},
    }
    assert lab.kernel.writes == []


def test_vdev_on_the_host_interface_is_refused(lab: Lab) -> None:
    r = lab.run(vdev="net_af_packet0,iface=eth0", check_mode=True)
    assert r["failed"] is True
    assert r["msg"].startswith("vdev 'net_af_packet0,iface=eth0': refusing interface 'eth0': "), r
    assert "it carries routes (default, 192.0.2.0/24)" in r["msg"]
    assert "it has addresses (192.0.2.15)" in r["msg"]


def test_vdev_on_loopback_is_refused(lab: Lab) -> None:
    lab.tree.add_iface("lo", operstate="unknown")
    r = lab.run(vdev="net_pcap0,rx_iface=lo,tx_iface=lo")
    assert r["failed"] is True and "loopback" in r["msg"]


def test_vdev_interface_must_exist_but_tap_creates_one(lab: Lab) -> None:
    r = lab.run(vdev="net_af_packet1,iface=nope0")
    assert r["failed"] is True and "'nope0' does not exist" in r["msg"]
    r = lab.run(vdev="net_tap0,iface=onvmtap0")
    assert not r.get("failed"), r


@pytest.mark.parametrize("spec", ["af_packet0,iface=veth-lab1", "net_af_packet0,iface", "0000:00:04.0"])
def test_malformed_vdev(lab: Lab, spec: str) -> None:
    r = lab.run(vdev=spec)
    assert r["failed"] is True and "vdev" in r["msg"]


def test_device_and_vdev_are_exclusive(lab: Lab) -> None:
    r = lab.run(device=FREE_NIC, vdev="net_null0", driver="vfio-pci")
    assert r["failed"] is True and "mutually exclusive" in r["msg"]


def test_driver_with_vdev_is_refused(lab: Lab) -> None:
    r = lab.run(vdev="net_null0", driver="vfio-pci")
    assert r["failed"] is True and "driver applies to PCI devices" in r["msg"]
