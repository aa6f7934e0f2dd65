"""Network functions in Python: libonvm_nf's burst API through cffi.

    from onvm.nf import NF, DROP

    def handle(packets):                    # a burst: list of memoryviews
        return [DROP if p[23] == 6 else NEXT for p in packets]   # or None: all NEXT

    NF(sys.argv, "nodrop-tcp").run(handle)

The NF is a DPDK secondary of its host's onvm-mgr like any C NF (same
command line: --host H [--service S] [--core C] [--shared-core] [-- own
options]); packets stay in hugepage memory, each burst is one call into
Python with a view of every packet's bytes (writable), and the verdicts come
back in one list: NEXT (on along the chain), DROP, or a port number.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import cffi

NEXT = -1
DROP = -2

# struct onvm_burst as in include/onvm/onvm_burst.h (ONVM_BURST = 32)
CDEF = """
struct onvm_nf;
struct onvm_burst {
    uint16_t n;
    uint8_t *data[32];
    uint16_t len[32];
    int32_t verdict[32];
};
int onvm_nf_init(int *argc, char ***argv, const char *default_service, struct onvm_nf **nf);
int onvm_nf_run_bursts(struct onvm_nf *nf, void (*fn)(struct onvm_burst *, void *), void *arg);
void onvm_nf_stop(struct onvm_nf *nf);
void onvm_nf_fini(struct onvm_nf *nf);
int onvm_nf_port_id(const struct onvm_nf *nf, const char *name);
int onvm_nf_service_id(const struct onvm_nf *nf, const char *name);
"""

LIB_PATHS = (
    os.environ.get("ONVM_NF_LIB", ""),
    "/usr/lib/onvm/libonvm_nf_burst.so",
    # a checkout (src/onvm/nf/ -> the top of the tree)
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
        "build",
        "libonvm_nf_burst.so",
    ),
)

Handler = Callable[[list[memoryview]], Sequence[int] | None]


class NFError(RuntimeError):
    pass


def _lib(ffi: cffi.FFI) -> Any:
    for path in LIB_PATHS:
        if path and os.path.exists(path):
            return ffi.dlopen(path)
    raise NFError(
        "libonvm_nf_burst.so not found (set ONVM_NF_LIB): looked in %s" % ", ".join(p for p in LIB_PATHS if p)
    )


class NF:
    """Attach to the host's manager's memory (onvm_nf_init); ``args`` holds
    the NF's own options (after "--").  The NF registers (becomes an
    instance traffic is steered to) only in :meth:`run`, so one whose own
    set-up fails never shows as running."""

    def __init__(self, argv: Sequence[str], service: str) -> None:
        self.ffi = cffi.FFI()
        self.ffi.cdef(CDEF)
        self.lib = _lib(self.ffi)
        # argv lives as long as the NF: the library keeps pointers into it
        self._args = [self.ffi.new("char[]", a.encode()) for a in argv]
        self._argv = self.ffi.new("char *[]", [*self._args, self.ffi.NULL])
        argc = self.ffi.new("int *", len(argv))
        argvp = self.ffi.new("char ***", self._argv)
        nfp = self.ffi.new("struct onvm_nf **")
        if self.lib.onvm_nf_init(argc, argvp, service.encode(), nfp) < 0:
            raise NFError("cannot attach to the manager (see above)")
        self.nf = nfp[0]
        self.args = [self.ffi.string(argvp[0][i]).decode() for i in range(1, argc[0])]

    def port_id(self, name: str) -> int:
        """A port by name ("port1", "1" or the DPDK device name), -1 if none."""
        return int(self.lib.onvm_nf_port_id(self.nf, name.encode()))

    def run(self, handle: Handler) -> int:
        """Register, then call ``handle`` with each burst until SIGINT/SIGTERM
        or the manager goes away; then unregister and release the EAL.
        Returns 0, or 1 if the manager refused the registration."""
        ffi, buffer = self.ffi, self.ffi.buffer

        def on_burst(b: Any, _arg: Any) -> None:
            n = b.n
            data, lens = b.data, b.len
            verdicts = handle([memoryview(buffer(data[i], lens[i])) for i in range(n)])
            if verdicts is not None:
                b.verdict[0:n] = verdicts

        # kept referenced until the loop ends (cffi frees a collected callback)
        cb = ffi.callback("void(struct onvm_burst *, void *)", on_burst)
        try:
            return int(self.lib.onvm_nf_run_bursts(self.nf, cb, ffi.NULL))
        finally:
            self.lib.onvm_nf_fini(self.nf)
