"""atheris driver: fuzz a running onvm-mgr's control socket (its line framing,
JSON parser and every command's argument checks) with one connection an
input.  The manager must answer every line with one JSON reply, or close
an over-long line's connection, and stay up; `shutdown` is never sent.

    python tests/fuzz_ctl.py SOCKET [libFuzzer options, e.g. -max_total_time=20]
"""

from __future__ import annotations

import json
import socket
import sys

import atheris

SOCK = sys.argv.pop(1)
CMDS = [
    "status",
    "nf_list",
    "register",
    "service_add",
    "service_list",
    "remote_set",
    "remote_del",
    "drain",
    "chain_set",
    "chain_del",
    "chain_list",
]


def one(line: bytes) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(SOCK)  # refused or missing: the manager is gone -> a finding
        s.sendall(line + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break  # it may close an over-long request's connection
            reply += chunk
        for r in reply.splitlines():
            assert isinstance(json.loads(r), dict), r
    finally:
        s.close()


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        # a request shaped like the real ones, with fuzzed arguments
        req: dict[str, object] = {"cmd": CMDS[fdp.ConsumeIntInRange(0, len(CMDS) - 1)]}
        for _ in range(fdp.ConsumeIntInRange(0, 5)):
            key = fdp.ConsumeUnicodeNoSurrogates(12)
            kind = fdp.ConsumeIntInRange(0, 4)
            req[key] = (
                fdp.ConsumeInt(8),
                fdp.ConsumeUnicodeNoSurrogates(40),
                [fdp.ConsumeUnicodeNoSurrogates(8) for _ in range(fdp.ConsumeIntInRange(0, 4))],
                {fdp.ConsumeUnicodeNoSurrogates(8): fdp.ConsumeInt(4)},
                None,
            )[kind]
        line = json.dumps(req).encode()
    else:
        line = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 70000)).replace(b"\n", b" ")
    if b"shutdown" in line:
        return
    one(line)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
