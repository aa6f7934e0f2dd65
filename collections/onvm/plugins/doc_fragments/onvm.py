# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Options shared by the modules of onvm.nfv.

``onvm.nfv.onvm``: O(host), for every module that works on one onvm host.
``onvm.nfv.onvm.runtime_dir``: O(runtime_dir), for those that reach the host's manager.
``onvm.nfv.onvm.system_roots``: O(sysfs_root) and O(procfs_root), for those that read the kernel's state.
"""

from __future__ import annotations


class ModuleDocFragment:
    # Standard documentation fragment: the onvm host
    DOCUMENTATION = r"""
options:
  host:
    description:
      - Name of the onvm host, 1-31 characters of C([A-Za-z0-9_.-]).
      - It names the host's manager C(onvm-mgr), its DPDK file prefix C(onvm-<host>), its control socket
        C(<runtime_dir>/onvm-<host>/onvm.sock) and its stats area C(/dev/shm/onvm-<host>.stats), and the NF
        containers and scaler agent that serve it.
      - C(module_defaults) can set it for a play's tasks through the action group C(group/onvm.nfv.onvm), when
        the play uses none of the group's modules without O(host) (M(onvm.nfv.dpdk_bind),
        M(onvm.nfv.hugepages)).
    type: str
    required: true
"""

    # The manager's DPDK runtime directory (where its control socket is)
    RUNTIME_DIR = r"""
options:
  runtime_dir:
    description:
      - DPDK runtime directory of the host; the manager's control socket is
        C(<runtime_dir>/onvm-<host>/onvm.sock).
      - The host's manager runs with it; every module that reaches that manager must be given the same one.
    type: path
    default: /var/run/dpdk
"""

    # Where the kernel's interfaces are mounted; only tests point them elsewhere
    SYSTEM_ROOTS = r"""
options:
  sysfs_root:
    description: Where sysfs is mounted. Only tests change it.
    type: path
    default: /sys
  procfs_root:
    description:
      - Where procfs is mounted (the module reads C(meminfo), C(mounts), C(net/route) and C(net/ipv6_route)
        there, as it needs them). Only tests change it.
    type: path
    default: /proc
"""
