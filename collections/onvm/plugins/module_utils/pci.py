# SPDX-License-Identifier: BSD-3-Clause
"""PCI devices and DPDK drivers through sysfs: the one implementation used by
the ``onvm.nfv.dpdk_bind`` module and the tests.

Binding follows dpdk-devbind's sysfs sequence: write the driver's name to the
device's ``driver_override``, unbind the device from its current driver,
write its address to ``drivers/<driver>/bind``, then clear the override.
Giving a device back to the kernel unbinds it from the DPDK driver and asks
the PCI bus to probe it again (``drivers_probe``), so its own driver takes it.

Safety rule (dpdk-devbind's "Active" check): never take a device or an
interface the machine itself uses.  The rule is onvm-mgr's, written once in
native/common/onvm_own.c and asked here through its ``onvm-own`` tool
(``port_owner``), so a port the module accepts is one the manager accepts.

Every function takes the sysfs root so the tests can run it against a tree
built in a temporary directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

DPDK_DRIVERS = ("vfio-pci", "uio_pci_generic", "igb_uio")

# Short (bus:dev.fn) or full (domain:bus:dev.fn) form; VMD domains have 5 digits.
_PCI_RE = re.compile(r"^(?:([0-9a-fA-F]{4,5}):)?([0-9a-fA-F]{2}):([01][0-9a-fA-F])\.([0-7])$")
_FULL_PCI_RE = re.compile(r"^[0-9a-f]{4,5}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$")


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


# --- interfaces and the machine's own --------------------------------------------------------


def interfaces(sysfs_root: str) -> list[str]:
    try:
        return sorted(
            n for n in os.listdir(os.path.join(sysfs_root, "class", "net")) if not n.startswith(".")
        )
    except OSError:
        return []


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


# Runs a command, as AnsibleModule.run_command does: (rc, stdout, stderr).
RunCommand = Callable[[list[str]], tuple[int, str, str]]


def port_owner(run: RunCommand, tool: str, spec: str, sysfs_root: str, procfs_root: str) -> str | None:
    """Why ``spec`` (a PCI address or a DPDK vdev, as onvm-mgr's ``--port``) is the
    machine's own, or None when DPDK may take it; raises PciError for a device or
    interface that does not exist.  The answer is ``tool``'s (onvm-own)."""
    rc, out, err = run([tool, "--sysfs", sysfs_root, "--procfs", procfs_root, spec])
    msg = out.strip()
    if rc == 0:
        return None
    if rc == 1 and msg:
        return msg
    raise PciError(msg or "%s failed (exit %d): %s" % (tool, rc, err.strip()))


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
    device: str,
    state: str,
    driver: str | None,
    owner: Callable[[str], str | None],
) -> DevicePlan:
    """Validate the request against sysfs without changing anything; raises PciError
    for a bad address, an unknown device or driver, or a device the machine uses
    (``owner(address)`` says why, or None: port_owner)."""
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
    why = owner(addr)
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
