# SPDX-License-Identifier: BSD-3-Clause
"""Fake sysfs / procfs / etc trees in a temporary directory, and small "kernels"
that react to writes the way Linux does, for the hugepages and pci tests.

Writes go through the module_utils' own write functions, which the tests
replace (monkeypatch) with the methods of FakePciKernel / FakeHugeKernel.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

from ansible_collections.onvm.nfv.plugins.module_utils import hugepages as hp
from ansible_collections.onvm.nfv.plugins.module_utils import pci

ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _link(link: Path, target: Path) -> None:
    """A relative symlink, as sysfs has them."""
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


class FakeTree:
    """sysfs, procfs and /etc below one temporary directory."""

    def __init__(self, base: Path):
        self.base = base
        self.sys = base / "sys"
        self.proc = base / "proc"
        self.etc = base / "etc"
        for d in (self.sys, self.proc / "net", self.etc):
            d.mkdir(parents=True, exist_ok=True)
        _write(self.proc / "net" / "route", ROUTE_HEADER)
        _write(self.proc / "net" / "ipv6_route", "")
        _write(self.proc / "mounts", "proc /proc proc rw,nosuid 0 0\n")
        _write(self.proc / "meminfo", "MemTotal:        8000000 kB\nHugepagesize:       2048 kB\n")

    # --- PCI ---------------------------------------------------------------------------

    def add_driver(self, name: str) -> Path:
        d = self.sys / "bus" / "pci" / "drivers" / name
        d.mkdir(parents=True, exist_ok=True)
        for f in ("bind", "unbind", "new_id"):
            (d / f).touch()
        _write(self.sys / "bus" / "pci" / "drivers_probe", "")
        return d

    def device_path(self, addr: str) -> Path:
        return self.sys / "devices" / "pci0000:00" / addr

    def add_device(
        self,
        addr: str,
        driver: str | None = None,
        iface: str | None = None,
        virtio: bool = False,
        operstate: str = "down",
        iommu_group: int | None = None,
    ) -> Path:
        dev = self.device_path(addr)
        dev.mkdir(parents=True)
        _write(dev / "driver_override", "(null)\n")
        _write(dev / "vendor", "0x1af4\n")
        _link(self.sys / "bus" / "pci" / "devices" / addr, dev)
        if driver is not None:
            _link(dev / "driver", self.add_driver(driver))
        if iommu_group is not None:
            group = self.sys / "kernel" / "iommu_groups" / str(iommu_group)
            group.mkdir(parents=True, exist_ok=True)
            _link(dev / "iommu_group", group)
        if iface is not None:
            self.add_iface(iface, dev / "virtio3" if virtio else dev, operstate)
        return dev

    def add_iface(self, iface: str, device: Path | None = None, operstate: str = "down") -> Path:
        """An interface; on a device (under <device>/net/) or virtual (under devices/virtual)."""
        if device is None:
            netdir = self.sys / "devices" / "virtual" / "net" / iface
        else:
            netdir = device / "net" / iface
            _link(netdir / "device", device)
        _write(netdir / "operstate", operstate + "\n")
        _link(self.sys / "class" / "net" / iface, netdir)
        return netdir

    def add_route(self, iface: str, net: str = "0.0.0.0/0") -> None:
        """An IPv4 route as /proc/net/route prints it (addresses in host byte order)."""
        n = ipaddress.IPv4Network(net)
        dst = int.from_bytes(n.network_address.packed, sys.byteorder)
        mask = int.from_bytes(n.netmask.packed, sys.byteorder)
        with open(self.proc / "net" / "route", "a") as f:
            f.write("%s\t%08X\t00000000\t0001\t0\t0\t0\t%08X\t0\t0\t0\n" % (iface, dst, mask))

    def add_route6(self, iface: str, dst_hex: str, plen: int) -> None:
        with open(self.proc / "net" / "ipv6_route", "a") as f:
            f.write(
                "%s %02x %s 00 %s 00000100 00000001 00000000 00000001 %8s\n"
                % (dst_hex, plen, "0" * 32, "0" * 32, iface)
            )

    # --- hugepages ----------------------------------------------------------------------

    def add_pool(self, size: str, nr: int = 0, free: int | None = None, node: int | None = None) -> Path:
        kb = hp.SIZES_KB[size]
        if node is None:
            d = self.sys / "kernel" / "mm" / "hugepages" / ("hugepages-%dkB" % kb)
        else:
            d = (
                self.sys
                / "devices"
                / "system"
                / "node"
                / ("node%d" % node)
                / "hugepages"
                / ("hugepages-%dkB" % kb)
            )
        _write(d / "nr_hugepages", "%d\n" % nr)
        _write(d / "free_hugepages", "%d\n" % (nr if free is None else free))
        _write(d / "surplus_hugepages", "0\n")
        return d

    def set_mounts(self, text: str) -> None:
        _write(self.proc / "mounts", text)


class FakePciKernel:
    """Reacts to sysfs writes as the PCI core does; records every write."""

    def __init__(self, tree: FakeTree, kernel_drivers: dict[str, str] | None = None):
        self.tree = tree
        self.kernel_drivers = dict(kernel_drivers or {})  # address -> driver drivers_probe picks
        self.refuse: set[str] = set()  # drivers whose probe fails
        self.writes: list[tuple[str, str]] = []

    def _bind(self, addr: str, driver: str) -> None:
        dev = self.tree.device_path(addr)
        if (dev / "driver").is_symlink():
            raise pci.PciError("bind %s: device busy" % addr)
        override = (dev / "driver_override").read_text().strip()
        if override not in ("(null)", driver) or driver in self.refuse:
            raise pci.PciError("bind %s to %s: no such device" % (addr, driver))
        ddir = self.tree.sys / "bus" / "pci" / "drivers" / driver
        _link(dev / "driver", ddir)

    def write_attr(self, path: str, value: str) -> None:
        self.writes.append((path, value))
        p = Path(path)
        if p.name == "driver_override":
            p.write_text((value.strip() or "(null)") + "\n")
        elif p.name == "unbind":
            dev = self.tree.device_path(value)
            link = dev / "driver"
            if not link.is_symlink() or Path(os.readlink(link)).name != p.parent.name:
                raise pci.PciError("unbind %s: no such device" % value)
            link.unlink()
        elif p.name == "bind":
            self._bind(value, p.parent.name)
        elif p.name == "drivers_probe":
            dev = self.tree.device_path(value)
            override = (dev / "driver_override").read_text().strip()
            driver = override if override != "(null)" else self.kernel_drivers.get(value)
            if driver and (self.tree.sys / "bus" / "pci" / "drivers" / driver).is_dir():
                self._bind(value, driver)
        else:
            raise AssertionError("unexpected sysfs write %s <- %r" % (path, value))


class FakeHugeKernel:
    """nr_hugepages that grants at most ``limit`` pages (None: all) and keeps
    free_hugepages in step (``in_use`` pages are taken)."""

    def __init__(self, limit: int | None = None, in_use: int = 0):
        self.limit = limit
        self.in_use = in_use
        self.writes: list[tuple[str, int]] = []

    def write_count(self, path: str, count: int) -> None:
        self.writes.append((path, count))
        got = count if self.limit is None else min(count, self.limit)
        # Pages in use stay, as surplus pages, until they are released.
        nr = max(got, self.in_use)
        Path(path).write_text("%d\n" % nr)
        Path(path).with_name("surplus_hugepages").write_text("%d\n" % (nr - got))
        Path(path).with_name("free_hugepages").write_text("%d\n" % (nr - self.in_use))
