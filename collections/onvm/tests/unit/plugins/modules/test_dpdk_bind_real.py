# SPDX-License-Identifier: BSD-3-Clause
"""onvm.nfv.dpdk_bind in check mode against this machine's own NIC: the PCI
device behind eth0 must be refused, and eth0 must be as it was afterwards.

Nothing is written in any case: check mode, and the sysfs writer is replaced
by one that fails the test if it is ever called.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import pci
from ansible_collections.onvm.nfv.plugins.modules import dpdk_bind
from ansible_collections.onvm.nfv.tests.unit.plugins.modules.module_runner import ModuleRunner

IFACE = "eth0"
_PCI_DIR = re.compile(r"^[0-9a-f]{4,5}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def eth0_pci_address() -> str | None:
    """Walk up from /sys/class/net/eth0/device to the directory named like a PCI address
    (on virtio machines the link points at <pci device>/virtioN)."""
    link = "/sys/class/net/%s/device" % IFACE
    if not os.path.exists(link):
        return None
    path = os.path.realpath(link)
    while path not in ("/", "/sys", "/sys/devices"):
        if _PCI_DIR.match(os.path.basename(path)):
            return os.path.basename(path)
        path = os.path.dirname(path)
    return None


def eth0_state() -> dict[str, Any]:
    """eth0's operstate and addresses, read without the code under test."""
    with open("/sys/class/net/%s/operstate" % IFACE) as f:
        state: dict[str, Any] = {"operstate": f.read().strip()}
    argv = ["ip", "-j", "addr", "show", "dev", IFACE]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    state["addresses"] = sorted(
        "%s/%s" % (a["local"], a["prefixlen"]) for link in json.loads(out.stdout) for a in link["addr_info"]
    )
    return state


@pytest.mark.skipif(eth0_pci_address() is None, reason="eth0 has no PCI device on this machine")
def test_eth0_device_is_refused_in_check_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], onvm_own: str
) -> None:
    addr = eth0_pci_address()
    assert addr is not None
    before = eth0_state()
    assert before["operstate"] == "up", "eth0 is expected to be up on this machine: %r" % before

    def no_writes(path: str, value: str) -> None:
        raise AssertionError("dpdk_bind tried to write %r to %s" % (value, path))

    monkeypatch.setattr(pci, "write_attr", no_writes)
    runner = ModuleRunner(capsys)
    for driver in ("vfio-pci", "uio_pci_generic"):
        r = runner(dpdk_bind.main, check_mode=True, device=addr, driver=driver, onvm_own=onvm_own)
        assert r["failed"] is True, r
        assert "refusing PCI device %s" % addr in r["msg"], r["msg"]
        assert "'%s'" % IFACE in r["msg"], r["msg"]
        # The short form of the same address is the same device.
        short = addr.split(":", 1)[1]
        r = runner(dpdk_bind.main, check_mode=True, device=short, driver=driver, onvm_own=onvm_own)
        assert r["failed"] is True and "refusing" in r["msg"], r

    assert eth0_state() == before
    assert pci.pci_address_of_interface("/sys", IFACE) == addr
