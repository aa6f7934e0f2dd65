#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module onvm.nfv.dpdk_bind: the logic is in module_utils/pci.py."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dpdk_bind
short_description: Bind a PCI NIC to a DPDK driver, give it back, or declare a virtual DPDK port
version_added: 0.1.0
description:
  - With O(device), binds a PCI device to a DPDK-capable driver through sysfs the way C(dpdk-devbind) does
    (the driver's name to C(driver_override), unbind from the current driver, the address to
    C(drivers/<driver>/bind), then the override is cleared), or with O(state=unbound) gives it back to the
    kernel (unbound from the DPDK driver, then probed again so its own driver takes it).
  - B(Refuses) a device the machine uses, in check mode too, and then writes nothing. Refused is a device
    that backs a network interface which is up, carries a route (any IPv4 route, the default route included,
    and any IPv6 route but link-local and multicast ones), or has an address (loopback and IPv6 link-local
    addresses aside). Interfaces below the device count as well (virtio machines put the interface under
    C(<device>/virtioN/net/)). This is C(dpdk-devbind)'s "Active" check, so the NIC behind C(eth0) is
    never taken.
  - The rule is onvm-mgr's own, written once in its C sources and applied here by its C(onvm-own) tool
    (O(onvm_own)), so a port this module accepts is one onvm-mgr accepts.
  - With O(vdev), declares a DPDK virtual device (C(net_af_packet), C(net_memif), C(net_tap),
    C(net_null), ...).
    Nothing changes on the host; the module checks the spec and returns it as RV(port) for onvm-mgr's
    C(--port). An interface the vdev opens (C(iface=), C(rx_iface=), C(tx_iface=), C(rx_iface_in=)) must exist
    (C(net_tap) creates its own) and is refused when it is the loopback interface or carries a route or an
    address.
author:
  - onvm engineers (@onvm)
extends_documentation_fragment:
  - onvm.nfv.onvm.system_roots
  - onvm.nfv.attributes
attributes:
  check_mode:
    support: full
    details:
      - Refusals happen in check mode too.
  diff_mode:
    support: full
    details:
      - Shows the device's driver before and after.
  idempotent:
    support: full
    details:
      - A device already bound to O(driver), or with O(state=unbound) not bound to a DPDK driver, is left as
        it is; a O(vdev) changes nothing on the host.
options:
  device:
    description:
      - PCI address of the device, full (C(0000:03:00.0)) or short (C(03:00.0)).
      - Exactly one of O(device) and O(vdev) is required.
    type: str
  driver:
    description:
      - The DPDK driver to bind to; required with O(state=bound) and a O(device).
      - It must be loaded (for example with C(community.general.modprobe)); C(vfio-pci) also needs an IOMMU
        (or vfio's C(enable_unsafe_noiommu_mode)).
    type: str
    choices: [vfio-pci, uio_pci_generic, igb_uio]
  state:
    description:
      - V(bound) binds the device to O(driver).
      - V(unbound) takes the device from its DPDK driver and gives it back to the kernel, whose own
        driver (virtio-pci, ixgbe, ...) takes it again when it is loaded. A device not bound to a DPDK
        driver is left as it is.
    type: str
    choices: [bound, unbound]
    default: bound
  vdev:
    description:
      - A DPDK virtual device as EAL's C(--vdev) takes it, for example
        C(net_af_packet0,iface=veth0,framecnt=8192).
    type: str
  onvm_own:
    description:
      - Path of onvm-mgr's C(onvm-own) tool, which applies the rule. By default C(onvm-own) is looked up on
        C(PATH) and in C(/usr/local/bin).
    type: path
notes:
  - Needs root on the managed host.
  - Addresses are read in the network namespace the module runs in.
"""

EXAMPLES = r"""
- name: Give the second NIC to DPDK
  onvm.nfv.dpdk_bind:
    device: "0000:00:04.0"
    driver: vfio-pci

- name: Give it back to the kernel
  onvm.nfv.dpdk_bind:
    device: "00:04.0"
    state: unbound

- name: A lab port on a veth end (nothing changes on the host)
  onvm.nfv.dpdk_bind:
    vdev: net_af_packet0,iface=veth-lab1,framecnt=8192
  register: lab_port

- name: Start onvm-mgr with it
  ansible.builtin.debug:
    msg: "onvm-mgr --port {{ lab_port.port }}"
"""

RETURN = r"""
port:
  description: The port as onvm-mgr's C(--port) takes it, the full PCI address or the vdev spec.
  returned: always
  type: str
  sample: "0000:00:04.0"
kind:
  description: V(pci) or V(vdev).
  returned: always
  type: str
  sample: pci
device:
  description: The full PCI address.
  returned: when O(device) is given
  type: str
  sample: "0000:00:04.0"
driver_before:
  description: The driver the device had, V(null) for none.
  returned: when O(device) is given
  type: str
  sample: virtio-pci
driver:
  description:
    - The driver the device has afterwards, V(null) for none.
    - In check mode with O(state=unbound), V(null) when the device would change (the kernel picks the driver).
  returned: when O(device) is given
  type: str
  sample: vfio-pci
interfaces:
  description: Network interfaces the device backs (before the task).
  returned: when O(device) is given
  type: list
  elements: str
  sample: [ens4]
iommu_group:
  description: The device's IOMMU group, V(null) without an IOMMU.
  returned: when O(device) is given
  type: int
  sample: 12
vdev:
  description: The vdev's name, driver and arguments.
  returned: when O(vdev) is given
  type: dict
  sample: {name: net_af_packet0, driver: net_af_packet, args: {iface: veth-lab1, framecnt: "8192"}}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onvm.nfv.plugins.module_utils import pci


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            device=dict(type="str"),
            driver=dict(type="str", choices=list(pci.DPDK_DRIVERS)),
            state=dict(type="str", choices=["bound", "unbound"], default="bound"),
            vdev=dict(type="str"),
            sysfs_root=dict(type="path", default="/sys"),
            procfs_root=dict(type="path", default="/proc"),
            onvm_own=dict(type="path"),
        ),
        mutually_exclusive=[("device", "vdev")],
        required_one_of=[("device", "vdev")],
        supports_check_mode=True,
    )
    p = module.params
    tool: str | None = p["onvm_own"] or module.get_bin_path("onvm-own", opt_dirs=["/usr/local/bin"])
    if p["onvm_own"] and not os.access(p["onvm_own"], os.X_OK):
        module.fail_json(msg="onvm_own=%s: no such executable (onvm-own, onvm-mgr's tool)" % p["onvm_own"])
    if tool is None:
        module.fail_json(
            msg="onvm-own (onvm-mgr's rule for the machine's own NICs) is not installed on this host: "
            "the onvm.nfv.onvm_host role installs it, or give its path in onvm_own"
        )

    def owner(spec: str) -> str | None:
        why: str | None = pci.port_owner(
            module.run_command, str(tool), spec, p["sysfs_root"], p["procfs_root"]
        )
        return why

    if p["vdev"] is not None:
        if p["driver"] is not None:
            module.fail_json(msg="driver applies to PCI devices (device), not to vdev")
        try:
            vdev = pci.parse_vdev(p["vdev"])
            why = owner(vdev.spec)
        except pci.PciError as e:
            module.fail_json(msg=str(e), kind="vdev", port=p["vdev"])
        if why:
            module.fail_json(msg="vdev '%s': %s" % (vdev.spec, why), kind="vdev", port=vdev.spec)
        module.exit_json(
            changed=False,
            kind="vdev",
            port=vdev.spec,
            vdev=dict(name=vdev.name, driver=vdev.driver, args=vdev.args),
        )

    try:
        plan = pci.plan_device(p["sysfs_root"], p["device"], p["state"], p["driver"], owner)
    except pci.PciError as e:
        module.fail_json(msg=str(e), kind="pci", port=p["device"])
    result = dict(
        changed=plan.changes,
        kind="pci",
        port=plan.address,
        device=plan.address,
        driver_before=plan.before,
        driver=plan.expected,
        interfaces=plan.interfaces,
        iommu_group=plan.iommu_group,
    )
    if module._diff:
        result["diff"] = plan.diff()
    if plan.changes and not module.check_mode:
        try:
            result["driver"] = pci.apply_device(p["sysfs_root"], plan)
        except pci.PciError as e:
            result["driver"] = pci.current_driver(p["sysfs_root"], plan.address)
            module.fail_json(msg=str(e), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
