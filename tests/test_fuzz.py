"""Fuzzing, bounded in time: the NSH decoder under libFuzzer (clang, with
address and undefined-behaviour sanitizers), a running manager's control
socket under atheris.  Neither may crash; the manager must still answer."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import socket_path
from onvm.lab.manager import REPO, ManagerProcess
from onvm.lab.pktio import frame

SECONDS = int(os.environ.get("ONVM_FUZZ_SECONDS", "20"))


def nsh(ttl: int, spi: int, si: int, inner: bytes) -> bytes:
    head = struct.pack("!HBBI", (ttl << 6) | 2, 2, 3, (spi << 8) | si)
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x89\x4f" + head + inner


def execs(out: str) -> int:
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    return int(m.group(1)) if m else 0


def test_the_nsh_decoder_survives_libfuzzer(tmp_path: Any, reliability: dict[str, Any]) -> None:
    clang = shutil.which("clang")
    assert clang is not None, "clang is installed by scripts/setup.sh"
    cflags = subprocess.run(["pkg-config", "--cflags", "libdpdk"], capture_output=True, text=True, check=True)
    exe = tmp_path / "fuzz_nsh"
    subprocess.run(
        [
            clang,
            "-g",
            "-O1",
            "-fsanitize=fuzzer,address,undefined",
            "-fno-sanitize-recover=undefined",
            *cflags.stdout.split(),
            "-I" + os.path.join(REPO, "native/include"),
            os.path.join(REPO, "native/fuzz/fuzz_nsh.c"),
            "-o",
            str(exe),
        ],
        check=True,
    )
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate([nsh(63, 42, 255, frame(1, 7000, 5000)), nsh(1, 42, 254, frame(2, 1, 2)), b""]):
        (corpus / ("seed%d" % i)).write_bytes(seed)
    out = subprocess.run(
        [str(exe), "-max_total_time=%d" % SECONDS, "-print_final_stats=1", "-max_len=2048", str(corpus)],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    n = execs(out.stderr)
    assert n > 1000
    reliability["fuzz_nsh_decoder"] = {
        "tool": "libFuzzer+ASan+UBSan",
        "seconds": SECONDS,
        "inputs": n,
        "crashes": 0,
    }


@pytest.mark.dataplane
def test_the_control_socket_survives_atheris(
    managers: Callable[..., ManagerProcess], reliability: dict[str, Any]
) -> None:
    mgr = managers()
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "tests/fuzz_ctl.py"),
            socket_path(mgr.host),
            "-max_total_time=%d" % SECONDS,
            "-print_final_stats=1",
            "-timeout=10",
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    n = execs(out.stderr)
    assert n > 100
    assert os.path.exists("/proc/%d" % mgr.pid)
    assert mgr.call("status")["host"] == mgr.host
    reliability["fuzz_control_socket"] = {"tool": "atheris", "seconds": SECONDS, "requests": n, "crashes": 0}
