"""The C side's per-host names (native/include/onvm/onvm_names.h, used by
onvm-mgr and libonvm_nf) are the ones module_utils/names.py gives the rest of
onvm: a program built from the header prints them for a host, and they must
match."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import names

TOP = Path(__file__).resolve().parents[2]

PROGRAM = r"""
#include <stdio.h>
#include "onvm/onvm_names.h"

int
main(int argc, char **argv)
{
	const char *host = argv[1], *rd = argv[2];
	char b[512];

	size_t small = (size_t)argc + 5; /* 8, unknown to the compiler */

	ONVM_NAME(b, sizeof(b), ONVM_FILE_PREFIX_FMT, host);
	printf("file_prefix %s\n", b);
	ONVM_NAME(b, sizeof(b), ONVM_HUGEPAGE_PREFIX_FMT, host);
	printf("hugepage_prefix %s\n", b);
	ONVM_NAME(b, sizeof(b), ONVM_RUNTIME_DIR_FMT, rd, host);
	printf("runtime_dir %s\n", b);
	ONVM_NAME(b, sizeof(b), ONVM_CTL_SOCKET_FMT, rd, host);
	printf("ctl_socket %s\n", b);
	ONVM_NAME(b, sizeof(b), ONVM_STATS_PATH_FMT, host);
	printf("stats %s\n", b);
	printf("default_runtime_dir %s\n", ONVM_DEFAULT_RUNTIME_DIR);
	printf("default_huge_dir %s\n", ONVM_DEFAULT_HUGE_DIR);
	printf("fits %d\n", ONVM_NAME(b, small, ONVM_STATS_PATH_FMT, host));
	for (int i = 3; i < argc; i++)
		printf("port[%s] %d\n", argv[i], onvm_port_index(argv[i]));
	return 0;
}
"""


# names a port may be given by in chains and NF options: the one rule says which are port numbers
PORT_NAMES = [
    "port0",
    "port3",
    "3",
    "port12",
    "port",
    "port-1",
    "-1",
    "port3x",
    "3x",
    "eth0",
    "net_null0",
    "port65536",
]


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
@pytest.mark.parametrize("host", ["lab1", "a.b-c_9"])
def test_the_c_header_names_what_names_py_names(tmp_path: Path, host: str) -> None:
    src = tmp_path / "names.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "names"
    subprocess.run(
        ["cc", "-Wall", "-Wextra", "-Werror", "-I", str(TOP / "native/include"), "-o", str(exe), str(src)],
        check=True,
    )
    rd = "/tmp/rd"
    out = subprocess.run([str(exe), host, rd, *PORT_NAMES], check=True, capture_output=True, text=True).stdout
    got = dict(line.split(" ", 1) for line in out.splitlines())
    ports = {k[5:-1]: int(v) for k, v in got.items() if k.startswith("port[")}
    assert ports == {n: -1 if names.port_index(n) is None else names.port_index(n) for n in PORT_NAMES}
    assert ports["port3"] == ports["3"] == 3 and ports["eth0"] == -1
    got = {k: v for k, v in got.items() if not k.startswith("port[")}
    assert got == {
        "file_prefix": names.file_prefix(host),
        "hugepage_prefix": names.hugepage_prefix(host),
        "runtime_dir": names.host_runtime_dir(host, rd),
        "ctl_socket": names.ctl_socket(host, rd),
        "stats": names.stats_path(host),
        "default_runtime_dir": names.RUNTIME_DIR,
        "default_huge_dir": names.HUGE_DIR,
        "fits": "-1",  # a path that does not fit is refused, not cut
    }
    assert os.path.dirname(names.leftover_globs(host)[0]) == names.HUGE_DIR
