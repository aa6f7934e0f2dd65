#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: chain
short_description: Apply declared service chains to a running onvm manager
version_added: "0.1.0"
description:
  - Compares the chains declared in O(chains) with those of the host's running C(onvm-mgr)
    (through its control socket) and sets the new and changed ones; with O(purge), removes the chains
    not declared.
  - Chains change on the fly and atomically; packets already inside a chain finish it, none is lost.
  - Every declared chain is checked by the manager before anything changes; a chain naming an unknown service
    or port fails with the manager's message.
extends_documentation_fragment:
  - onvm.nfv.onvm
  - onvm.nfv.onvm.runtime_dir
  - onvm.nfv.attributes
  - onvm.nfv.attributes.actiongroup_onvm
attributes:
  check_mode:
    support: full
    details:
      - The declared chains are checked against the manager's services and ports in check mode too.
      - In check mode on a host whose manager does not run yet (a check before the first deploy), the module
        reports the chains it would set, with a warning, and checks them when the manager runs.
  diff_mode:
    support: partial
    details:
      - The diff shows the manager's chains before and after. The stand-ins of O(remotes) are not in it;
        RV(remotes_set) and RV(remotes_deleted) list them.
      - A chain's C(spi), which the manager assigns, shows as removed from every declared chain that does not
        give one.
  idempotent:
    support: full
options:
  chains:
    description:
      - Chains by name. Each has C(services) (list of service names, in order), optional C(match) (keys
        C(in_port), C(proto), C(src), C(dst), C(src_port), C(dst_port)) and optional C(egress) (port name
        like C(port1), or null to drop at the end).
    type: dict
    default: {}
  remotes:
    description:
      - Stand-ins for services whose instances run on other hosts, each C(service), C(host) and C(port) (the
        fabric port towards that host). Packets steered to one leave through that port in NSH.
      - Stand-ins not listed are removed.
    type: list
    elements: dict
    default: []
  purge:
    description: Remove chains the manager has that are not in O(chains).
    type: bool
    default: true
author:
  - onvm engineers (@onvm)
"""

EXAMPLES = r"""
- name: Web traffic through firewall then forward, out of port1
  onvm.nfv.chain:
    host: lab1
    chains:
      web:
        match: {in_port: port0, proto: udp, dst_port: 80}
        services: [firewall, forward]
        egress: port1
"""

RETURN = r"""
set:
  description: Chains created or changed.
  returned: always
  type: list
  elements: str
remotes_set:
  description: Stand-ins created, as service/host/port.
  returned: always
  type: list
  elements: dict
remotes_deleted:
  description: Stand-ins removed.
  returned: always
  type: list
  elements: dict
deleted:
  description: Chains removed.
  returned: always
  type: list
  elements: str
chains:
  description: The manager's chains after the change.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onvm.nfv.plugins.module_utils import chains as ch
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import (
    CtlClient,
    CtlError,
    name_ok,
    socket_path,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            chains=dict(type="dict", default={}),
            remotes=dict(type="list", elements="dict", default=[]),
            purge=dict(type="bool", default=True),
            runtime_dir=dict(type="path", default="/var/run/dpdk"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        want = {}
        for name, spec in p["chains"].items():
            if not name_ok(name):
                raise ch.ChainSpecError("chain name '%s' is not valid (1-31 of [A-Za-z0-9_.-])" % name)
            want[name] = ch.normalise(name, spec)
    except ch.ChainSpecError as e:
        module.fail_json(msg=str(e))
    for r in p["remotes"]:
        if set(r) != {"service", "host", "port"} or not all(isinstance(v, str) for v in r.values()):
            module.fail_json(msg="remotes: each needs service, host and port (strings), got %s" % r)
    if module.check_mode and not os.path.exists(socket_path(p["host"], p["runtime_dir"])):
        # a check before the first deploy: no manager yet (the deploy starts
        # it before this task); what would be set is all that can be said
        module.warn(
            "no onvm-mgr for host '%s' yet: the chains are checked against its services and ports "
            "when it runs" % p["host"]
        )
        module.exit_json(
            changed=bool(want or p["remotes"]),
            set=sorted(want),
            deleted=[],
            chains={},
            remotes_set=p["remotes"],
            remotes_deleted=[],
            diff=dict(before={}, after=want),
        )
    try:
        with CtlClient(p["host"], p["runtime_dir"]) as ctl:
            have = ch.current(ctl)
            changes = ch.diff(have, want, p["purge"])
            remote = ch.remote_diff(ctl.call("nf_list")["nfs"], p["remotes"])
            known = {s["name"] for s in ctl.call("service_list")["services"]} | {
                r["service"] for r in p["remotes"]
            }
            n_ports = len(ctl.call("status")["ports"])
            for name in changes["set"]:
                problem = ch.check(name, want[name], known, n_ports)
                if problem:
                    module.fail_json(msg=problem)  # before anything changed
            after = {n: have[n] for n in have if n in want or not p["purge"]}
            after.update(want)
            result = dict(
                changed=bool(changes["set"] or changes["delete"] or remote["set"] or remote["delete"]),
                set=changes["set"],
                deleted=changes["delete"],
                chains=have,
                remotes_set=remote["set"],
                remotes_deleted=remote["delete"],
                diff=dict(before=have, after=after),
            )
            if not module.check_mode:
                for r in remote["set"]:
                    # load 100 until the scaler reports that host's: new
                    # flows prefer instances known to have room
                    ctl.call("remote_set", load=100, **r)
                ch.apply(ctl, want, changes)
                for r in remote["delete"]:
                    ctl.call("remote_del", **r)
                result["chains"] = ch.current(ctl)
    except CtlError as e:
        module.fail_json(msg=str(e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
