"""Hugepages: make sure enough 2 MiB pages are free."""

from __future__ import annotations

import os

SYS = "/sys/kernel/mm/hugepages/hugepages-2048kB"


def _read(name: str) -> int:
    with open(os.path.join(SYS, name)) as f:
        return int(f.read())


def free_pages() -> int:
    return _read("free_hugepages")


def ensure_free(pages: int) -> int:
    """Raise nr_hugepages until ``pages`` are free; returns the free count."""
    missing = pages - free_pages()
    if missing > 0:
        with open("/proc/sys/vm/nr_hugepages", "w") as f:
            f.write(str(_read("nr_hugepages") + missing))
    got = free_pages()
    if got < pages:
        raise RuntimeError("wanted %d free 2 MiB hugepages, the kernel gave %d" % (pages, got))
    return got
