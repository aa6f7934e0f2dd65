# SPDX-License-Identifier: BSD-3-Clause
"""Where a daemon listens: "PORT" or "ADDR:PORT" (the scaler's metrics)."""

from __future__ import annotations


def parse_listen(text: str, default_addr: str = "127.0.0.1") -> tuple[str, int]:
    """ "PORT" or "ADDR:PORT" -> (addr, port); ValueError names what is wrong."""
    addr, port = text.rpartition(":")[::2]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected PORT or ADDR:PORT with a port of 1-65535, got %r" % text)
    return addr.strip("[]") or default_addr, int(port)
