# SPDX-License-Identifier: BSD-3-Clause
"""Fixtures of the collection's unit tests: onvm-mgr's own-NIC rule as its
onvm-own tool, built from the C sources; a network namespace whose
interfaces give that rule real addresses and routes to read."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[5]
_counter = itertools.count()


@pytest.fixture(scope="session")
def onvm_own(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The onvm-own tool, compiled from native/common/onvm_own.c and
    native/tools/own/own.c as meson does (warnings are errors)."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    exe = tmp_path_factory.mktemp("own") / "onvm-own"
    subprocess.run(
        [
            "cc",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            str(TOP / "native/include"),
            "-o",
            str(exe),
            str(TOP / "native/common/onvm_own.c"),
            str(TOP / "native/tools/own/own.c"),
        ],
        check=True,
    )
    return str(exe)


class NetNs:
    """A network namespace of the test's own; ``tool()`` is a command that runs
    onvm-own inside it (so the rule reads that namespace's addresses)."""

    def __init__(self, name: str, workdir: Path, onvm_own: str):
        self.name = name
        self.workdir = workdir
        self.onvm_own = onvm_own

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)

    def link(self, iface: str, up: bool = False) -> None:
        """An interface named ``iface`` (a veth end: this kernel has no dummy driver)."""
        self.ip("link", "add", iface, "type", "veth", "peer", "name", "p%d" % next(_counter))
        if up:
            self.ip("link", "set", iface, "up")

    def addr(self, iface: str, addr: str) -> None:
        self.ip("addr", "add", addr, "dev", iface, *(["nodad"] if ":" in addr else []))

    def tool(self) -> str:
        path = self.workdir / "onvm-own-in-netns"
        if not path.exists():
            path.write_text('#!/bin/sh\nexec ip netns exec %s %s "$@"\n' % (self.name, self.onvm_own))
            path.chmod(0o755)
        return str(path)


@pytest.fixture
def netns(tmp_path: Path, onvm_own: str) -> Iterator[NetNs]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    name = "onvmown%d-%d" % (os.getpid() % 10000, next(_counter))
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield NetNs(name, tmp_path, onvm_own)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
