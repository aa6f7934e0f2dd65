#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: onvm_info
short_description: Facts about a host's onvm manager, its NFs, chains and counters
version_added: "0.1.0"
description:
  - Reads the manager's control socket (status, NFs, services, chains) and its stats area (per-port and
    per-instance counters, mbuf pool), through the same code the scaler uses.
  - Changes nothing. When no manager runs, returns C(running=false) rather than failing.
extends_documentation_fragment:
  - onvm.nfv.onvm
  - onvm.nfv.onvm.runtime_dir
  - onvm.nfv.attributes
  - onvm.nfv.attributes.info_module
  - onvm.nfv.attributes.actiongroup_onvm
options:
  stats_file:
    description: Stats area of the manager; C(/dev/shm/onvm-<host>.stats) when unset.
    type: path
author:
  - onvm engineers (@onvm)
"""

EXAMPLES = r"""
- name: Read the counters of lab1
  onvm.nfv.onvm_info:
    host: lab1
  register: onvm

- name: Show what the firewall dropped
  ansible.builtin.debug:
    msg: "{{ onvm.stats.nfs | selectattr('service', 'equalto', 'firewall') | map(attribute='dropped') }}"
"""

RETURN = r"""
running:
  description: Whether a manager answers for the host.
  returned: always
  type: bool
status:
  description: The manager's status (ports, pool, counts).
  returned: when running
  type: dict
nfs:
  description: NF instances as the manager lists them.
  returned: when running
  type: list
  elements: dict
services:
  description: Services the manager knows.
  returned: when running
  type: list
  elements: dict
chains:
  description: Chains the manager runs.
  returned: when running
  type: list
  elements: dict
stats:
  description: A consistent snapshot of the stats area (ports, nfs, pool).
  returned: when running
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlClient, CtlError
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import StatsError, StatsReader, default_path


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            runtime_dir=dict(type="path", default="/var/run/dpdk"),
            stats_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        with CtlClient(p["host"], p["runtime_dir"], timeout=10) as ctl:
            info = {
                "status": ctl.call("status"),
                "nfs": ctl.call("nf_list")["nfs"],
                "services": ctl.call("service_list")["services"],
                "chains": ctl.call("chain_list")["chains"],
            }
    except CtlError:
        module.exit_json(changed=False, running=False)
    try:
        with StatsReader(p["stats_file"] or default_path(p["host"])) as reader:
            info["stats"] = reader.snapshot()
    except StatsError as e:
        module.fail_json(msg="manager of %s answers but its stats area is unreadable: %s" % (p["host"], e))
    module.exit_json(changed=False, running=True, **info)


if __name__ == "__main__":
    main()
