# SPDX-License-Identifier: BSD-3-Clause
"""PCI devices and DPDK drivers through sysfs: the one implementation used by
the ``onvm.nfv.dpdk_bind`` module and the tests.

Binding follows dpdk-devbind's sysfs sequence: write the driver's name to the
device's ``driver_override``, unbind the device from its current driver,
write its address to ``drivers/<driver>/bind``, then clear the override.
Giving a device back to the kernel unbinds it from the DPDK driver and asks
the PCI bus to probe it again (``drivers_probe``), so its own driver takes it.

Safety rule (the same as onvm-mgr's in native/manager/ports.c, and
dpdk-devbind's "Active" check): never take a device or an interface the
machine itself uses.  A PCI device is refused when a network interface it
backs (directly, or through a child device such as ``virtioN`` on virtio
machines) is up, carries a route, or has an address outside the lab range
198.18.0.0/15 (loopback and IPv6 link-local addresses do not count).

Every function takes the sysfs root (and the procfs root where it reads
routes) so the tests can run it against a tree built in a temporary
directory.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import struct
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, field

IPAddress = typing.Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # noqa: UP007 (pylint)

DPDK_DRIVERS = ("vfio-pci", "uio_pci_generic", "igb_uio")
LAB_NET4 = ipaddress.IPv4Network("198.18.0.0/15")
LOOPBACK_NET4 = ipaddress.IPv4Network("127.0.0.0/8")

# Short (bus:dev.fn) or full (domain:bus:dev.fn) form; VMD domains have 5 digits.
_PCI_RE = re.compile(r"^(?:([0-9a-fA-F]{4,5}):)?([0-9a-fA-F]{2}):([01][0-9a-fA-F])\.([0-7])$")
_FULL_PCI_RE = re.compile(r"^[0-9a-f]{4,5}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$")
# DPDK vdev arguments that name an existing kernel interface the PMD opens.
VDEV_IFACE_KEYS = ("iface", "rx_iface", "tx_iface", "rx_iface_in")


class PciError(Exception):
    """A device, driver or interface that cannot be used, or a sysfs write that failed."""


# --- addresses and paths ---------------------------------------------------------------


def normalize_address(addr: str) -> str:
    """``03:00.0`` or ``0000:03:00.0`` (any case) -> ``0000:03:00.0``."""
    m = _PCI_RE.match(addr.strip())
    if m is None:
        raise PciError(
            "'%s' is not a PCI address (expected domain:bus:device.function such as "
            "0000:03:00.0, or the short form 03:00.0)" % addr
        )
    domain, bus, dev, fn = m.groups()
    return "%s:%s:%s.%s" % ((domain or "0000").lower(), bus.lower(), dev.lower(), fn)


def is_full_address(name: str) -> bool:
    """Is ``name`` a full PCI address as sysfs spells it (a device directory's name)?"""
    return _FULL_PCI_RE.match(name) is not None


def device_dir(sysfs_root: str, addr: str) -> str:
    return os.path.join(sysfs_root, "bus", "pci", "devices", addr)


def driver_dir(sysfs_root: str, driver: str) -> str:
    return os.path.join(sysfs_root, "bus", "pci", "drivers", driver)


def device_exists(sysfs_root: str, addr: str) -> bool:
    return os.path.isdir(device_dir(sysfs_root, addr))


def driver_loaded(sysfs_root: str, driver: str) -> bool:
    return os.path.isdir(driver_dir(sysfs_root, driver))


def current_driver(sysfs_root: str, addr: str) -> str | None:
    """Name of the driver the device is bound to, or None."""
    link = os.path.join(device_dir(sysfs_root, addr), "driver")
    if not os.path.islink(link):
        return None
    return os.path.basename(os.readlink(link).rstrip("/"))


def driver_override(sysfs_root: str, addr: str) -> str | None:
    """Contents of the device's driver_override ("(null)" and empty read as None)."""
    value = read_attr(os.path.join(device_dir(sysfs_root, addr), "driver_override"))
    if value is None or value in ("", "(null)"):
        return None
    return value


def iommu_group(sysfs_root: str, addr: str) -> int | None:
    link = os.path.join(device_dir(sysfs_root, addr), "iommu_group")
    if not os.path.islink(link):
        return None
    try:
        return int(os.path.basename(os.readlink(link).rstrip("/")))
    except ValueError:
        return None


def read_attr(path: str) -> str | None:
    """A sysfs attribute without its trailing newline, or None when it is missing."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def write_attr(path: str, value: str) -> None:
    """Write one sysfs attribute (a single write, as the kernel expects)."""
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write(value)
    except OSError as e:
        raise PciError("cannot write '%s' to %s: %s" % (value.strip(), path, e.strerror or e)) from e


# --- interfaces, routes, addresses --------------------------------------------------------


def interfaces(sysfs_root: str) -> list[str]:
    try:
        return sorted(
            n for n in os.listdir(os.path.join(sysfs_root, "class", "net")) if not n.startswith(".")
        )
    except OSError:
        return []


def interface_exists(sysfs_root: str, iface: str) -> bool:
    return os.path.exists(os.path.join(sysfs_root, "class", "net", iface))


def interface_device(sysfs_root: str, iface: str) -> str | None:
    """Resolved sysfs path of the device behind ``iface`` (None for virtual interfaces)."""
    link = os.path.join(sysfs_root, "class", "net", iface, "device")
    if not os.path.exists(link):
        return None
    return os.path.realpath(link)


def _is_at_or_below(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def interfaces_of_device(sysfs_root: str, addr: str) -> list[str]:
    """Interfaces backed by the PCI device: those whose resolved ``device`` is the
    device's own directory or lies below it (virtio: <dev>/virtioN/net/<if>)."""
    top = os.path.realpath(device_dir(sysfs_root, addr))
    found = []
    for iface in interfaces(sysfs_root):
        dev = interface_device(sysfs_root, iface)
        if dev is not None and _is_at_or_below(dev, top):
            found.append(iface)
    return found


def pci_address_of_interface(sysfs_root: str, iface: str) -> str | None:
    """The PCI device an interface sits on: walk up from its resolved ``device``
    to the nearest directory named like a full PCI address."""
    path = interface_device(sysfs_root, iface)
    while path and path not in ("/", os.path.realpath(sysfs_root)):
        name = os.path.basename(path)
        if is_full_address(name):
            return name
        path = os.path.dirname(path)
    return None


def operstate(sysfs_root: str, iface: str) -> str:
    return read_attr(os.path.join(sysfs_root, "class", "net", iface, "operstate")) or "unknown"


def _lab_or_loopback(addr: IPAddress) -> bool:
    if isinstance(addr, ipaddress.IPv4Address):
        return addr in LAB_NET4 or addr in LOOPBACK_NET4
    return addr.is_link_local or addr.is_loopback


def _route_v4_dst(hex_dst: str) -> ipaddress.IPv4Address:
    # /proc/net/route prints the network-order address as a host-order integer.
    return ipaddress.IPv4Address(int(hex_dst, 16).to_bytes(4, sys.byteorder))


def routes_of(procfs_root: str, iface: str) -> list[str]:
    """Routes via ``iface`` that belong to the machine, as readable strings: every IPv4
    route but those to a lab destination (the default route counts), every IPv6
    route but link-local and multicast ones."""
    found = []
    try:
        with open(os.path.join(procfs_root, "net", "route"), encoding="ascii") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 8 or fields[0] != iface:
                    continue
                try:
                    dst = _route_v4_dst(fields[1])
                    mask = bin(int(fields[7], 16)).count("1")
                except ValueError:
                    continue  # the header line
                if int(dst) != 0 and dst in LAB_NET4:
                    continue
                found.append("%s/%d" % (dst, mask) if int(dst) else "default")
    except OSError:
        pass
    try:
        with open(os.path.join(procfs_root, "net", "ipv6_route"), encoding="ascii") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 10 or fields[-1] != iface:
                    continue
                hex_dst = fields[0].lower()
                if hex_dst.startswith("fe80") or hex_dst.startswith("ff"):
                    continue
                try:
                    dst6 = ipaddress.IPv6Address(bytes.fromhex(hex_dst))
                    plen = int(fields[1], 16)
                except ValueError:
                    continue
                found.append("%s/%d" % (dst6, plen))
    except OSError:
        pass
    return found


# Netlink (rtnetlink) constants for an address dump.
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_RTM_NEWADDR = 20
_RTM_GETADDR = 22
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_IFA_ADDRESS = 1
_IFA_LOCAL = 2
_NLMSGHDR = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")


def _align4(n: int) -> int:
    return (n + 3) & ~3


def parse_addr_dump(data: bytes, ifindex: int) -> tuple[list[IPAddress], bool]:
    """Addresses of interface ``ifindex`` in a buffer of RTM_NEWADDR messages;
    the flag says whether the dump's final message was seen."""
    out: list[IPAddress] = []
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size:
            break
        if mtype == _NLMSG_DONE:
            return out, True
        if mtype == _NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, off + _NLMSGHDR.size)
            if err:
                raise OSError(-err, os.strerror(-err))
            return out, True
        if mtype == _RTM_NEWADDR:
            body = off + _NLMSGHDR.size
            family, _plen, _fl, _scope, index = _IFADDRMSG.unpack_from(data, body)
            if index == ifindex:
                attrs: dict[int, bytes] = {}
                a = body + _IFADDRMSG.size
                end = off + length
                while a + _RTATTR.size <= end:
                    alen, atype = _RTATTR.unpack_from(data, a)
                    if alen < _RTATTR.size:
                        break
                    attrs[atype] = data[a + _RTATTR.size : a + alen]
                    a += _align4(alen)
                raw = attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS)
                if family == socket.AF_INET and raw is not None and len(raw) == 4:
                    out.append(ipaddress.IPv4Address(raw))
                elif family == socket.AF_INET6 and raw is not None and len(raw) == 16:
                    out.append(ipaddress.IPv6Address(raw))
        off += _align4(length)
    return out, False


def interface_addresses(iface: str) -> list[IPAddress]:
    """IPv4 and IPv6 addresses of ``iface`` in this network namespace (rtnetlink
    address dump; an interface this namespace does not have has none)."""
    try:
        ifindex = socket.if_nametoindex(iface)
    except OSError:
        return []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as s:  # NETLINK_ROUTE
        s.settimeout(5.0)
        req = _NLMSGHDR.pack(
            _NLMSGHDR.size + _IFADDRMSG.size, _RTM_GETADDR, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
        ) + _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        s.send(req)
        found: list[IPAddress] = []
        done = False
        while not done:
            addrs, done = parse_addr_dump(s.recv(65536), ifindex)
            found.extend(addrs)
    return found


def foreign_addresses(iface: str, addresses: Callable[[str], list[IPAddress]] | None = None) -> list[str]:
    """Addresses of ``iface`` outside the lab range, loopback and IPv6 link-local."""
    lookup = addresses if addresses is not None else interface_addresses
    return [str(a) for a in lookup(iface) if not _lab_or_loopback(a)]


def interface_in_use(
    sysfs_root: str,
    procfs_root: str,
    iface: str,
    check_up: bool = True,
    addresses: Callable[[str], list[IPAddress]] | None = None,
) -> str | None:
    """Why ``iface`` belongs to the machine (up / routes / addresses), or None."""
    reasons = []
    if iface == "lo":
        reasons.append("it is the loopback interface")
    if check_up and operstate(sysfs_root, iface) == "up":
        reasons.append("it is up")
    routes = routes_of(procfs_root, iface)
    if routes:
        reasons.append("it carries routes (%s)" % ", ".join(routes[:4]))
    foreign = foreign_addresses(iface, addresses)
    if foreign:
        reasons.append("it has addresses outside 198.18.0.0/15 (%s)" % ", ".join(foreign[:4]))
    return "; ".join(reasons) or None


def device_in_use(
    sysfs_root: str,
    procfs_root: str,
    addr: str,
    addresses: Callable[[str], list[IPAddress]] | None = None,
) -> str | None:
    """Why the PCI device must not be taken from the kernel, or None."""
    for iface in interfaces_of_device(sysfs_root, addr):
        why = interface_in_use(sysfs_root, procfs_root, iface, addresses=addresses)
        if why:
            return "refusing PCI device %s: it backs interface '%s' and %s (the machine's own NIC)" % (
                addr,
                iface,
                why,
            )
    return None


# --- vdevs -------------------------------------------------------------------------------


@dataclass
class Vdev:
    """A DPDK virtual device as onvm-mgr's ``--port`` takes it."""

    spec: str
    name: str
    args: dict[str, str] = field(default_factory=dict)

    @property
    def driver(self) -> str:
        return self.name.rstrip("0123456789")

    def interfaces(self) -> list[str]:
        return [self.args[k] for k in VDEV_IFACE_KEYS if k in self.args]


def parse_vdev(spec: str) -> Vdev:
    """``net_af_packet0,iface=veth0,framecnt=8192`` -> Vdev."""
    parts = [p.strip() for p in spec.strip().split(",")]
    name = parts[0]
    if not re.match(r"^net_[a-z0-9_]*[a-z][a-z0-9_]*$", name):
        raise PciError(
            "vdev '%s' must start with a DPDK virtual device name such as net_af_packet0, "
            "net_memif0, net_tap0 or net_null0" % spec
        )
    args: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise PciError("vdev '%s': argument '%s' is not key=value" % (spec, part))
        args[key] = value
    return Vdev(spec=",".join(parts), name=name, args=args)


def check_vdev(
    sysfs_root: str,
    procfs_root: str,
    vdev: Vdev,
    addresses: Callable[[str], list[IPAddress]] | None = None,
) -> None:
    """Refuse a vdev that would open one of the machine's own interfaces.  As in
    onvm-mgr: af_packet and pcap open an existing interface (it must exist);
    tap creates its own.  An up interface is fine here (a lab veth is up)."""
    creates = vdev.name.startswith("net_tap")
    for iface in vdev.interfaces():
        if not interface_exists(sysfs_root, iface):
            if creates:
                continue
            raise PciError("vdev '%s': interface '%s' does not exist" % (vdev.spec, iface))
        why = interface_in_use(sysfs_root, procfs_root, iface, check_up=False, addresses=addresses)
        if why:
            raise PciError(
                "refusing vdev '%s': interface '%s' belongs to this machine: %s "
                "(only interfaces with no address outside 198.18.0.0/15 may be taken)"
                % (vdev.spec, iface, why)
            )


# --- binding -----------------------------------------------------------------------------


def is_dpdk_driver(driver: str | None) -> bool:
    return driver is not None and driver in DPDK_DRIVERS


def bind(sysfs_root: str, addr: str, driver: str) -> None:
    """Bind ``addr`` to ``driver``: override, unbind, bind, clear the override.
    If the bind fails, the device is handed back to the driver it had."""
    dev = device_dir(sysfs_root, addr)
    old = current_driver(sysfs_root, addr)
    if old == driver:
        return
    override = os.path.join(dev, "driver_override")
    has_override = os.path.exists(override)
    if has_override:
        write_attr(override, driver)
    if old is not None:
        write_attr(os.path.join(driver_dir(sysfs_root, old), "unbind"), addr)
    error = None
    try:
        write_attr(os.path.join(driver_dir(sysfs_root, driver), "bind"), addr)
    except PciError as e:
        error = e
    now = current_driver(sysfs_root, addr)
    if has_override:
        write_attr(override, "\n")
    if now == driver:
        return  # some drivers report an error on bind and bind all the same
    hint = ""
    if driver == "vfio-pci":
        group = iommu_group(sysfs_root, addr)
        if group is None:
            hint = (
                " (the device has no IOMMU group: vfio-pci needs the IOMMU enabled, or "
                "vfio's enable_unsafe_noiommu_mode; uio_pci_generic works without)"
            )
    if old is not None and now is None:
        try:
            write_attr(os.path.join(driver_dir(sysfs_root, old), "bind"), addr)
        except PciError:
            pass  # reported below: the device is left without a driver
        if current_driver(sysfs_root, addr) == old:
            hint += "; it was given back to %s" % old
        else:
            hint += "; WARNING: it could not be given back to %s and has no driver now" % old
    raise PciError(
        "binding %s to %s failed: %s%s" % (addr, driver, error or "the device is bound to %s" % now, hint)
    )


def unbind(sysfs_root: str, addr: str) -> None:
    """Give the device back to the kernel: clear a DPDK driver_override, unbind it
    from its DPDK driver and let the PCI bus probe it (its own driver takes it)."""
    dev = device_dir(sysfs_root, addr)
    override = os.path.join(dev, "driver_override")
    if is_dpdk_driver(driver_override(sysfs_root, addr)):
        write_attr(override, "\n")
    old = current_driver(sysfs_root, addr)
    if not is_dpdk_driver(old):
        return
    write_attr(os.path.join(driver_dir(sysfs_root, str(old)), "unbind"), addr)
    probe = os.path.join(sysfs_root, "bus", "pci", "drivers_probe")
    if os.path.exists(probe):
        write_attr(probe, addr)


def needs_unbind(sysfs_root: str, addr: str) -> bool:
    return is_dpdk_driver(current_driver(sysfs_root, addr)) or is_dpdk_driver(
        driver_override(sysfs_root, addr)
    )


# --- plan and apply ----------------------------------------------------------------------------


@dataclass
class DevicePlan:
    """A PCI device, the driver it has, and the one it will have."""

    address: str
    state: str
    driver: str | None  # the DPDK driver asked for (state=bound)
    before: str | None
    changes: bool
    interfaces: list[str] = field(default_factory=list)
    iommu_group: int | None = None

    @property
    def expected(self) -> str | None:
        """The driver after the change (None: unbound, the kernel chooses)."""
        if not self.changes:
            return self.before
        return self.driver if self.state == "bound" else None

    def diff(self) -> dict[str, str]:
        return {
            "before_header": "PCI device %s" % self.address,
            "after_header": "PCI device %s" % self.address,
            "before": "driver: %s\n" % (self.before or "(none)"),
            "after": "driver: %s\n" % (self.expected or ("(the kernel's)" if self.changes else "(none)")),
        }


def plan_device(
    sysfs_root: str,
    procfs_root: str,
    device: str,
    state: str,
    driver: str | None,
    addresses: Callable[[str], list[IPAddress]] | None = None,
) -> DevicePlan:
    """Validate the request against sysfs without changing anything; raises PciError
    for a bad address, an unknown device or driver, or a device the machine uses."""
    try:
        addr = normalize_address(device)
    except PciError as e:
        raise PciError("device=%s" % e) from None
    if not device_exists(sysfs_root, addr):
        raise PciError("device=%s: no such PCI device (no %s)" % (device, device_dir(sysfs_root, addr)))
    if state not in ("bound", "unbound"):
        raise PciError("state=%s: use bound or unbound" % state)
    if state == "bound" and not driver:
        raise PciError("driver is required with state=bound (one of %s)" % ", ".join(DPDK_DRIVERS))
    if driver is not None and not is_dpdk_driver(driver):
        raise PciError("driver=%s: not a DPDK driver (use one of %s)" % (driver, ", ".join(DPDK_DRIVERS)))
    before = current_driver(sysfs_root, addr)
    changes = before != driver if state == "bound" else needs_unbind(sysfs_root, addr)
    p = DevicePlan(
        address=addr,
        state=state,
        driver=driver if state == "bound" else None,
        before=before,
        changes=changes,
        interfaces=interfaces_of_device(sysfs_root, addr),
        iommu_group=iommu_group(sysfs_root, addr),
    )
    if not changes:
        return p
    why = device_in_use(sysfs_root, procfs_root, addr, addresses)
    if why:
        raise PciError(why)
    if state == "bound" and driver is not None and not driver_loaded(sysfs_root, driver):
        raise PciError(
            "driver=%s: the driver is not loaded (no %s); load it first (modprobe %s)"
            % (driver, driver_dir(sysfs_root, driver), driver.replace("-", "_"))
        )
    return p


def apply_device(sysfs_root: str, p: DevicePlan) -> str | None:
    """Carry the plan out; returns the driver the device has afterwards."""
    if p.changes:
        if p.state == "bound" and p.driver is not None:
            bind(sysfs_root, p.address, p.driver)
        else:
            unbind(sysfs_root, p.address)
    return current_driver(sysfs_root, p.address)
