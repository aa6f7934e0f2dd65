#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module onvm.nfv.hugepages: the logic is in module_utils/hugepages.py."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hugepages
short_description: Reserve hugepages for DPDK, mount hugetlbfs and keep both across reboots
version_added: 0.1.0
description:
  - Sets the number of hugepages of one size in the machine-wide pool
    (C(/sys/kernel/mm/hugepages/hugepages-<kB>kB/nr_hugepages)) or in the pool of one NUMA node
    (C(/sys/devices/system/node/node<N>/hugepages/...)).
  - Mounts hugetlbfs for that page size (at O(mount)) when it is not mounted.
  - With O(persist=true), keeps the state across reboots where Linux offers a file for it, see the notes.
  - When the kernel grants fewer pages than asked (memory too fragmented), the module fails, says how
    many pages it got, and writes the previous count back, so nothing is left half-changed.
  - The kernel may keep pages in use by running DPDK processes when the count is lowered
    (they become surplus pages and are freed when released).
author:
  - onvm engineers (@onvm)
extends_documentation_fragment:
  - onvm.nfv.onvm.system_roots
  - onvm.nfv.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Shows the count, the mount and the persistence files before and after.
  idempotent:
    support: full
    details:
      - Two deployments that each set their own exact O(count) on one pool change it on every run; use
        O(at_least) there.
options:
  count:
    description:
      - Number of pages the pool must hold, 0 or more.
      - Refused when it is more memory than the machine has.
    type: int
    required: true
  at_least:
    description:
      - When V(true), a pool that already holds more than O(count) pages is left as it is, so O(count) is a
        floor, never lowered to. With O(persist), the floor is what is kept for the next boot.
      - For machines whose pool serves more than one deployment (lab hosts sharing one kernel, a host whose
        set-up reserves pages for tests). An exact count there takes pages back from the others, and two
        deployments that each set their own exact count change the pool on every run.
    type: bool
    default: false
  size:
    description:
      - Page size. Refused when this kernel does not offer it (for example V(1G) on a CPU without 1G pages).
    type: str
    choices: [2M, 1G]
    default: 2M
  node:
    description:
      - NUMA node whose pool is set. When omitted, the machine-wide pool is set and the kernel spreads
        the pages over the nodes.
    type: int
  mount:
    description:
      - Where hugetlbfs for this page size is mounted; created and mounted when absent.
      - Fails, changing nothing, when another file system, or hugetlbfs of another page size, is mounted
        there (give each size its own mount, for example C(/dev/hugepages-1G)).
      - V(null) leaves mounts alone.
    type: path
    default: /dev/hugepages
  persist:
    description:
      - Keep the state across reboots.
      - The machine-wide pool of the kernel's default page size (2M on x86) is written as C(vm.nr_hugepages)
        to C(/etc/sysctl.d/80-onvm-hugepages.conf).
      - The mount is written as a line of C(/etc/fstab).
      - 1G pages and per-node pools B(cannot) be kept this way (there is no sysctl for them); the module does
        not write anything for them and warns. Reserve them on the kernel command line
        (C(hugepagesz=1G hugepages=N), or the per-node form C(hugepages=<node>:<N>)), which this module does
        not edit.
      - V(false) changes the live state only and leaves existing persistence files alone.
    type: bool
    default: true
  etc_root:
    description: The directory holding C(sysctl.d/) and C(fstab). Only tests change it.
    type: path
    default: /etc
notes:
  - Needs root on the managed host.
  - Pages of 1G are best reserved at boot; at run time the kernel often cannot find 1G of contiguous memory.
seealso:
  - name: Linux hugetlbpage documentation
    description: The sysfs and sysctl interfaces this module uses.
    link: https://docs.kernel.org/admin-guide/mm/hugetlbpage.html
"""

EXAMPLES = r"""
- name: 512 pages of 2M, hugetlbfs at /dev/hugepages, kept across reboots
  onvm.nfv.hugepages:
    count: 512

- name: Two 1G pages on NUMA node 0 with their own mount (live only; use the kernel command line for boot)
  onvm.nfv.hugepages:
    count: 2
    size: 1G
    node: 0
    mount: /dev/hugepages-1G
    persist: false

- name: At least 256 pages of 2M; a pool that holds more is left alone
  onvm.nfv.hugepages:
    count: 256
    at_least: true

- name: Give the 2M pages back, leave mounts alone
  onvm.nfv.hugepages:
    count: 0
    mount: null
"""

RETURN = r"""
count_before:
  description: Pages in the pool before the task.
  returned: always
  type: int
  sample: 0
count_after:
  description: Pages in the pool after the task (in check mode, what it would be).
  returned: always
  type: int
  sample: 512
free:
  description: Free pages in the pool after the task (in check mode, free pages now).
  returned: always
  type: int
  sample: 480
size:
  description: The page size.
  returned: always
  type: str
  sample: 2M
node:
  description: The NUMA node, or V(null) for the machine-wide pool.
  returned: always
  type: int
  sample: null
mount:
  description: The hugetlbfs mount point, or V(null) when mounts are left alone.
  returned: always
  type: str
  sample: /dev/hugepages
persisted:
  description: Whether the count is kept across reboots by the sysctl file.
  returned: always
  type: bool
  sample: true
sysctl_file:
  description: The sysctl file holding the count, when there is one.
  returned: always
  type: str
  sample: /etc/sysctl.d/80-onvm-hugepages.conf
got:
  description: On a shortfall only, how many pages the kernel granted before the old count was written back.
  returned: failure
  type: int
  sample: 300
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onvm.nfv.plugins.module_utils import hugepages as hp


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            count=dict(type="int", required=True),
            at_least=dict(type="bool", default=False),
            size=dict(type="str", choices=list(hp.SIZES_KB), default="2M"),
            node=dict(type="int"),
            mount=dict(type="path", default=hp.DEFAULT_MOUNT),
            persist=dict(type="bool", default=True),
            sysfs_root=dict(type="path", default="/sys"),
            procfs_root=dict(type="path", default="/proc"),
            etc_root=dict(type="path", default="/etc"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    size: str = p["size"]
    node: int | None = p["node"]
    result: dict[str, object] = dict(changed=False, size=size, node=node, mount=p["mount"] or None)
    count: int = p["count"]
    try:
        if p["at_least"] and count >= 0:
            count = max(count, hp.read_pool(p["sysfs_root"], size, node).nr)
        plan = hp.plan(
            p["sysfs_root"],
            p["procfs_root"],
            p["etc_root"],
            count,
            size,
            node,
            p["mount"] or None,
            p["persist"],
        )
        if p["at_least"] and plan.sysctl_file is not None:
            # what this deployment needs at boot is the floor, whatever the
            # others raised the live pool to (else every change of theirs
            # would change this file on the next run)
            plan.sysctl_after = hp.sysctl_content(p["count"])
    except hp.HugepageError as e:
        module.fail_json(msg=str(e), **result)
    result.update(
        changed=plan.changed,
        count_before=plan.before.nr,
        count_after=plan.count,
        free=plan.before.free,
        mount=plan.mount,
        persisted=plan.persisted,
        sysctl_file=plan.sysctl_file,
    )
    if module._diff:
        result["diff"] = plan.diff()
    if plan.not_persisted:
        module.warn(plan.not_persisted)
    if plan.changed and not module.check_mode:
        try:
            after = hp.apply(plan, p["sysfs_root"], module.run_command)
        except hp.ShortfallError as e:
            result.update(changed=e.restored != e.old, count_after=e.restored, got=e.got)
            module.fail_json(msg=str(e), **result)
        except hp.HugepageError as e:
            try:
                now = hp.read_pool(p["sysfs_root"], size, node)
                result.update(changed=True, count_after=now.nr, free=now.free)
            except hp.HugepageError:
                result.update(changed=True)
            module.fail_json(msg=str(e), **result)
        result.update(count_after=after.nr, free=after.free)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
