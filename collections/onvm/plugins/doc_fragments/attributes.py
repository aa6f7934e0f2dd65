# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Attributes of the modules of onvm.nfv (ansible-doc's ATTRIBUTES table).

``onvm.nfv.attributes`` describes check_mode, diff_mode, idempotent and platform; each module says how far it
supports the first three in its own ``attributes:``. The named fragments fill in what is the same for several
modules.
"""

from __future__ import annotations


class ModuleDocFragment:
    # Standard documentation fragment: every module extends it and sets check_mode, diff_mode and
    # idempotent's support itself
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run with C(--check) (C(check_mode)), then reports whether it would change the host and
      changes nothing.
  diff_mode:
    description: With C(--diff), returns what it changed (in check mode, what it would change) as before and
      after.
  idempotent:
    description:
      - Run a second time with the same arguments, outside check mode, it reports no change.
      - Provided nothing else changed the host in a way that matters to the module in between.
  platform:
    description: The systems it can manage.
    support: full
    platforms: linux
    details:
      - Linux only (DPDK, hugetlbfs, sysfs, procfs, the manager's Unix socket).
"""

    # Used together with the standard fragment by modules that change nothing
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - It only reads; nothing on the host changes.
  diff_mode:
    support: N/A
    details:
      - It only reads; nothing on the host changes.
  idempotent:
    support: full
    details:
      - It only reads; nothing on the host changes.
"""

    # Membership of the action group of meta/runtime.yml
    ACTIONGROUP_ONVM = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/onvm.nfv.onvm) in C(module_defaults) to set defaults for this module.
      - The group holds the modules that talk to one host's manager (M(onvm.nfv.manager), M(onvm.nfv.nf),
        M(onvm.nfv.chain), M(onvm.nfv.onvm_info)); all of them take C(host) and C(runtime_dir).
    support: full
    membership:
      - onvm.nfv.onvm
"""
