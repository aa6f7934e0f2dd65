# SPDX-License-Identifier: BSD-3-Clause
"""Client of onvm-mgr's control socket (Unix stream, one JSON object per line).

Protocol: native/README.md.  Used by the modules, the scaler and the tests.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

from . import names

DEFAULT_RUNTIME_DIR = names.RUNTIME_DIR
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,31}$")  # host, service and chain names (as onvm_name_ok())


class CtlError(Exception):
    """No manager, a broken connection, or a request the manager refused."""


def name_ok(name: str) -> bool:
    """A valid host, service or chain name: 1-31 of [A-Za-z0-9_.-]."""
    return bool(NAME_RE.match(name))


# control socket of the manager of a host
socket_path = names.ctl_socket


class CtlClient:
    """One connection to a manager; ``call()`` sends a request, returns the reply."""

    def __init__(self, host: str, runtime_dir: str = DEFAULT_RUNTIME_DIR, timeout: float = 10.0):
        self.path = socket_path(host, runtime_dir)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(self.path)
        except OSError as e:
            self._sock.close()
            raise CtlError("no onvm-mgr for host %r (%s: %s)" % (host, self.path, e.strerror)) from e
        self._file = self._sock.makefile("rwb")

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # the manager may have closed first; nothing is buffered that matters
        self._sock.close()

    def __enter__(self) -> CtlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, line: bytes) -> dict[str, Any]:
        """Send one raw line (tests use it for malformed input); parse the reply."""
        try:
            self._file.write(line if line.endswith(b"\n") else line + b"\n")
            self._file.flush()
            reply = self._file.readline()
        except OSError as e:
            raise CtlError("control socket %s: %s" % (self.path, e)) from e
        if not reply:
            raise CtlError("onvm-mgr closed the control connection (%s)" % self.path)
        result: dict[str, Any] = json.loads(reply)
        return result

    def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Run a command; raise CtlError with the manager's message if refused."""
        reply = self.send_raw(json.dumps(dict(cmd=cmd, **args)).encode())
        if not reply.get("ok"):
            raise CtlError(str(reply.get("error", "request refused")))
        return reply


def call(host: str, cmd: str, runtime_dir: str = DEFAULT_RUNTIME_DIR, **args: Any) -> dict[str, Any]:
    """One request on a fresh connection."""
    with CtlClient(host, runtime_dir) as client:
        return client.call(cmd, **args)
