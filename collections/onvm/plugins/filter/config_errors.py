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

# Each filter's documentation is <filter name>.yml next to this file (ansible-doc -t filter onvm.nfv.<name>).


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
