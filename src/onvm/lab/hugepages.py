"""Hugepages for the lab: make sure enough 2 MiB pages are free, through the
collection's module_utils (the same code the onvm.nfv.hugepages module runs)."""

from __future__ import annotations

from ansible_collections.onvm.nfv.plugins.module_utils.hugepages import read_pool, set_count

SYSFS = "/sys"


def free_pages() -> int:
    return int(read_pool(SYSFS, "2M").free)


def ensure_free(pages: int) -> int:
    """Raise the 2 MiB pool until ``pages`` are free; returns the free count.
    If the kernel grants fewer, the old count is put back and it raises."""
    pool = read_pool(SYSFS, "2M")
    if pool.free < pages:
        set_count(SYSFS, "2M", None, pool.nr + pages - pool.free)
    got = free_pages()
    if got < pages:
        raise RuntimeError("wanted %d free 2 MiB hugepages, the kernel gave %d" % (pages, got))
    return got
