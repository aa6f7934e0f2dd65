"""An idle data plane costs almost nothing; the stats area reads the same
through cffi as C lays it out, and consistently while written."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils.onvm_stats import find_header, stats_ffi
from onvm.lab.cpu import core_share
from onvm.lab.manager import ManagerProcess, binary
from onvm.lab.netns import lab_ports


@pytest.mark.dataplane
def test_idle_manager_uses_under_a_tenth_of_a_core(tag: str, managers: Callable[..., ManagerProcess]) -> None:
    with lab_ports(tag, 2) as ports:
        mgr = managers([p.vdev(i) for i, p in enumerate(ports)])
        time.sleep(0.5)  # past start-up
        share = core_share([mgr.pid])
    assert share < 0.10, "idle onvm-mgr used %.1f%% of a core" % (share * 100)


@pytest.mark.dataplane
def test_ten_idle_nfs_cost_almost_nothing(managers: Callable[..., ManagerProcess]) -> None:
    mgr = managers()
    procs = [
        subprocess.Popen(
            [binary("bounce"), "--host", mgr.host, "--service", "idle%d" % i]
            + (["--shared-core"] if i % 2 else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(10)
    ]
    try:
        deadline = time.monotonic() + 30
        while len([n for n in mgr.call("nf_list")["nfs"] if n["state"] == "running"]) < 10:
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.1)
        time.sleep(0.5)
        share = core_share([p.pid for p in procs] + [mgr.pid])
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
    assert share < 0.10, "ten idle NFs and their manager used %.1f%% of a core" % (share * 100)


def test_cffi_layout_matches_the_c_compiler(tmp_path: Path) -> None:
    """cffi parses the header itself; check it agrees with gcc on every field."""
    header = find_header()
    ffi, lib = stats_ffi(header)
    with open(header) as f:
        cdef = re.search(r"ONVM-CDEF-BEGIN \*/(.*?)/\* ONVM-CDEF-END", f.read(), re.S)
    assert cdef is not None
    checks = []
    for struct, body in re.findall(r"struct (\w+) \{(.*?)\};", cdef.group(1), re.S):
        checks.append(("struct %s" % struct, None))
        for field in re.findall(r"\s(\w+)(?:\[\w+\])?;", body):
            checks.append(("struct %s" % struct, field))
    src = ["#include <stddef.h>", "#include <stdio.h>", '#include "%s"' % header, "int main(void) {"]
    for ctype, field in checks:
        expr = "offsetof(%s, %s)" % (ctype, field) if field else "sizeof(%s)" % ctype
        src.append('printf("%%zu\\n", (size_t)%s);' % expr)
    src.append("return 0; }")
    (tmp_path / "layout.c").write_text("\n".join(src))
    subprocess.run(["gcc", "-o", str(tmp_path / "layout"), str(tmp_path / "layout.c")], check=True)
    c_values = [
        int(v)
        for v in subprocess.run(
            [str(tmp_path / "layout")], capture_output=True, text=True, check=True
        ).stdout.split()
    ]
    py_values = [ffi.offsetof(ctype, field) if field else ffi.sizeof(ctype) for ctype, field in checks]
    assert len(checks) > 40
    assert py_values == c_values
    assert lib.ONVM_STATS_VERSION == 3


@pytest.mark.dataplane
def test_stats_snapshots_are_consistent_while_written(managers: Callable[..., ManagerProcess]) -> None:
    mgr = managers()
    with mgr.stats() as st:
        first = st.snapshot()
        assert first["host"] == mgr.host
        assert first["mgr_pid"] == mgr.pid
        assert first["pool"]["size"] == mgr.call("status")["pool"]["size"] == 8191
        seen = [st.snapshot()["updates"] for _ in range(200)]
        st.wait_update(seen[-1])
        assert seen == sorted(seen)
        assert st.snapshot()["updates"] > first["updates"]
