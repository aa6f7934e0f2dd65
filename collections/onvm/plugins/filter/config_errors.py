# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter onvm.nfv.config_errors: what is wrong with declared services and chains."""

from __future__ import annotations

from typing import Any

from ansible_collections.onvm.nfv.plugins.module_utils.config import (
    config_errors,
    fabric_ports,
    host_chain_errors,
    host_chains,
    nf_file_check,
    nf_file_digests,
    nf_files,
    nf_staged_files,
    remotes,
    scaler_config,
)

DOCUMENTATION = r"""
name: config_errors
short_description: List what is wrong with onvm_services and onvm_chains
version_added: "0.1.0"
description:
  - Returns a list of messages, each naming the bad key (an unknown service in a chain, a negative or absurd
    instance count, a missing image name, a chain that loops, ...); empty when the declaration is valid.
positional: chains
options:
  _input:
    description: The onvm_services mapping.
    type: dict
    required: true
  chains:
    description: The onvm_chains mapping.
    type: dict
    required: false
"""

EXAMPLES = r"""
- name: Check the declaration before touching any host
  ansible.builtin.assert:
    that: onvm_services | onvm.nfv.config_errors(onvm_chains) | length == 0
    fail_msg: "{{ onvm_services | onvm.nfv.config_errors(onvm_chains) }}"
"""

RETURN = r"""
_value:
  description: Error messages, empty if the declaration is valid.
  type: list
  elements: str
"""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "config_errors": config_errors,
            "fabric_ports": fabric_ports,
            "host_chain_errors": host_chain_errors,
            "host_chains": host_chains,
            "nf_file_check": nf_file_check,
            "nf_file_digests": nf_file_digests,
            "nf_files": nf_files,
            "nf_staged_files": nf_staged_files,
            "remotes": remotes,
            "scaler_config": scaler_config,
        }
