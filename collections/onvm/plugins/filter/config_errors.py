# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's filters: checks of the declared services and chains, what the roles derive from them,
and every per-host name (module_utils/names.py)."""

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
from ansible_collections.onvm.nfv.plugins.module_utils.names import host_names

# Each filter's documentation is <filter name>.yml next to this file (ansible-doc -t filter onvm.nfv.<name>).


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "config_errors": config_errors,
            "fabric_ports": fabric_ports,
            "host_chain_errors": host_chain_errors,
            "host_chains": host_chains,
            "host_names": host_names,
            "nf_file_check": nf_file_check,
            "nf_file_digests": nf_file_digests,
            "nf_files": nf_files,
            "nf_staged_files": nf_staged_files,
            "remotes": remotes,
            "scaler_config": scaler_config,
        }
