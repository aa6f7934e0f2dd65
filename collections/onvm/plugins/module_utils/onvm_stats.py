# SPDX-License-Identifier: BSD-3-Clause
"""Read a host's onvm stats area (written by onvm-mgr) through cffi.

The layout is defined once, in C: native/include/onvm/onvm_stats.h.  This
module feeds the part of that header between the ONVM-CDEF markers to
cffi's parser and maps the file; it never restates a field or an offset.
Reads follow the header's sequence lock: copy while ``seq`` is even and
unchanged, so a snapshot is never torn.
"""

from __future__ import annotations

import mmap
import os
import re
import time
from typing import Any

from . import names

try:
    import cffi

    HAS_CFFI = True
except ImportError:  # pragma: no cover - reported by callers
    HAS_CFFI = False

HEADER_NAME = "onvm_stats.h"
_CDEF_RE = re.compile(r"/\* ONVM-CDEF-BEGIN \*/(.*?)/\* ONVM-CDEF-END \*/", re.S)
_STATES = {0: "free", 1: "starting", 2: "running", 3: "draining", 4: "dead"}


class StatsError(Exception):
    """The stats area is missing, foreign, of another version, or unstable."""


# where onvm-mgr keeps the stats area of a host by default
default_path = names.stats_path


def find_header() -> str:
    """Locate onvm_stats.h: $ONVM_STATS_HEADER, beside this file (the
    symlink in the source tree, package data in a wheel), the source tree,
    or where the onvm-dataplane package installs it on every host.

    Ansible modules only find that last one: AnsiballZ ships the .py files
    of module_utils, so in a module this file lives in a zip with no
    header beside it and no source tree around it."""
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.normpath(os.path.join(here, "..", "..", "..", "..", "native", "include", "onvm"))
    installed = os.path.join("/usr/include/onvm", HEADER_NAME)
    env = os.environ.get("ONVM_STATS_HEADER", "")
    candidates = [env, os.path.join(here, HEADER_NAME), os.path.join(tree, HEADER_NAME), installed]
    for path in candidates:
        if path and os.path.isfile(path):
            return os.path.realpath(path)
    looked = ["$ONVM_STATS_HEADER (%s)" % (env or "unset")]
    if os.path.isdir(here):
        looked += candidates[1:]
    else:  # a zip: the module's own files, run by Ansible
        looked += ["the module's files (AnsiballZ ships module_utils' .py files only)", installed]
    raise StatsError(
        "cannot find %s, the stats layout; looked at %s. On a host, the onvm-dataplane package "
        "installs it at %s (the role onvm_host installs the package, deploy.yml runs it); "
        "elsewhere set ONVM_STATS_HEADER to native/include/onvm/%s"
        % (HEADER_NAME, ", ".join(looked), installed, HEADER_NAME)
    )


_FFI_CACHE: dict[str, tuple[Any, Any]] = {}


def stats_ffi(header: str | None = None) -> tuple[Any, Any]:
    """(ffi, lib): cffi's view of the stats structs and constants, parsed
    from the C header."""
    if not HAS_CFFI:
        raise StatsError("the Python package cffi is required to read onvm stats")
    header = header or find_header()
    if header not in _FFI_CACHE:
        with open(header) as f:
            match = _CDEF_RE.search(f.read())
        if match is None:
            raise StatsError("%s has no ONVM-CDEF section" % header)
        ffi = cffi.FFI()
        ffi.cdef(match.group(1))
        # the header's #define constants live on a "library" object
        _FFI_CACHE[header] = (ffi, ffi.dlopen(None))
    return _FFI_CACHE[header]


def _cstr(ffi: Any, arr: Any) -> str:
    return str(ffi.string(arr).decode("utf-8", "replace"))


def _port(ffi: Any, p: Any) -> dict[str, Any]:
    return {
        "name": _cstr(ffi, p.name),
        "rx": p.rx,
        "tx": p.tx,
        "rx_nombuf": p.rx_nombuf,
        "tx_drop": p.tx_drop,
        "no_chain": p.no_chain,
        "steer_drop": p.steer_drop,
        "nsh_drop": p.nsh_drop,
    }


def _nf(ffi: Any, lib: Any, n: Any) -> dict[str, Any]:
    return {
        "instance": n.instance,
        "service": _cstr(ffi, n.service),
        "service_id": n.service_id,
        "state": _STATES.get(n.state, "unknown"),
        "shared_core": bool(n.flags & lib.ONVM_INST_F_SHARED_CORE),
        "remote": bool(n.flags & lib.ONVM_INST_F_REMOTE),
        "pid": n.pid,
        "rx": n.rx,
        "tx": n.tx,
        "dropped": n.dropped,
        "rx_drop": n.rx_drop,
        "tx_drop": n.tx_drop,
        "processed": n.processed,
        "busy_cycles": n.busy_cycles,
        "idle_cycles": n.idle_cycles,
        "wakeups": n.wakeups,
        "rx_ring_count": n.rx_ring_count,
        "rx_ring_size": n.rx_ring_size,
        "flows": n.flows,
        "load_pct": n.load_pct,
    }


_TOTALS = ("rx", "tx", "dropped", "rx_drop", "tx_drop", "processed")


def _service(ffi: Any, s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"service": _cstr(ffi, s.name), "instances": s.instances}
    out.update({k: getattr(s, k) for k in _TOTALS})
    return out


def _chain(ffi: Any, c: Any) -> dict[str, Any]:
    return {"chain": _cstr(ffi, c.name), "rx": c.rx, "tx": c.tx, "remote": c.remote}


class StatsReader:
    """Maps one stats file; ``snapshot()`` returns a consistent dict."""

    def __init__(self, path: str, header: str | None = None) -> None:
        self.path = path
        self.ffi, self.lib = stats_ffi(header)
        self._size = self.ffi.sizeof("struct onvm_stats_area")
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            raise StatsError("no stats area at %s: %s (is onvm-mgr running?)" % (path, e.strerror)) from e
        try:
            if os.fstat(fd).st_size < self._size:
                raise StatsError("%s is smaller than the stats layout: another version?" % path)
            self._map = mmap.mmap(fd, self._size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)
        self._view = self.ffi.cast("struct onvm_stats_area *", self.ffi.from_buffer(self._map))
        if self._view.magic != self.lib.ONVM_STATS_MAGIC:
            raise StatsError("%s is not an onvm stats area" % path)
        known = self.lib.ONVM_STATS_VERSION
        if self._view.version != known:
            raise StatsError(
                "%s has layout version %d, this reader knows %d" % (path, self._view.version, known)
            )

    def close(self) -> None:
        self._view = None
        self._map.close()

    def __enter__(self) -> StatsReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def raw(self, retries: int = 1000) -> _Snapshot:
        """A consistent copy of the area as a cffi struct (seqlock read)."""
        for _attempt in range(retries):
            before = self._view.seq
            if before & 1:
                time.sleep(0.0001)
                continue
            copy = bytes(self._map[: self._size])
            if self._view.seq == before:
                buf = self.ffi.new("char[]", copy)
                area = self.ffi.cast("struct onvm_stats_area *", buf)
                # keep the buffer alive as long as the struct view
                return _Snapshot(area, buf)
        raise StatsError("%s kept changing while being read" % self.path)

    def snapshot(self) -> dict[str, Any]:
        """The area as plain Python data."""
        snap = self.raw()
        a = snap.area
        ffi = self.ffi
        return {
            "host": _cstr(ffi, a.host),
            "mgr_pid": a.mgr_pid,
            "version": a.version,
            "tsc_hz": a.tsc_hz,
            "updated_ns": a.updated_ns,
            "updates": a.updates,
            "pool": {"size": a.pool_size, "avail": a.pool_avail},
            "flows_active": a.flows_active,
            "reclaimed": a.reclaimed,
            "ports": [_port(ffi, a.ports[i]) for i in range(a.n_ports)],
            "nfs": [
                _nf(ffi, self.lib, a.nfs[i])
                for i in range(a.n_instances)
                if a.nfs[i].state != self.lib.ONVM_INST_FREE
            ],
            # per service and per chain, over the manager's life: instances
            # that are gone still count (these never go back)
            "services": [
                _service(ffi, a.services[i]) for i in range(a.n_services) if a.services[i].name[0] != b"\0"
            ],
            "chains": [_chain(ffi, a.chains[i]) for i in range(a.n_chains) if a.chains[i].name[0] != b"\0"],
        }

    def wait_update(self, after: int | None = None, timeout: float = 5.0) -> int:
        """Block until the manager has published a newer snapshot than
        ``after`` (an ``updates`` count); returns the new count."""
        start = int(self._view.updates) if after is None else after
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = int(self._view.updates)
            if now > start:
                return now
            time.sleep(0.01)
        raise StatsError("%s: no update within %.1f s (manager stalled?)" % (self.path, timeout))


class _Snapshot:
    """A copied area and the buffer that owns its memory."""

    def __init__(self, area: Any, buf: Any) -> None:
        self.area = area
        self._buf = buf
