# SPDX-License-Identifier: BSD-3-Clause
"""Hugepage pools, the hugetlbfs mount and their persistence: the one
implementation used by the ``onvm.nfv.hugepages`` module and the tests.

Pools live in sysfs: ``kernel/mm/hugepages/hugepages-<kB>kB/`` for the whole
machine and ``devices/system/node/node<N>/hugepages/hugepages-<kB>kB/`` per
NUMA node, each with ``nr_hugepages`` (read/write) and ``free_hugepages``.
The kernel may grant fewer pages than asked (fragmented memory); ``set_count``
then puts the old count back and raises, so nothing is left half-changed.

Persistence: the machine-wide pool of the *default* page size is what the
``vm.nr_hugepages`` sysctl sets, so that one is kept in a sysctl.d file.  Other
sizes (1G) and per-node pools have no sysctl: they are reserved on the
kernel command line (``hugepagesz=1G hugepages=N``), which this code does
not edit.  The mount is kept as an fstab line.

Every function takes the sysfs, procfs or /etc root it reads so the tests can
point it at a tree built in a temporary directory.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

SIZES_KB = {"2M": 2048, "1G": 1048576}
DEFAULT_MOUNT = "/dev/hugepages"
SYSCTL_FILE = os.path.join("sysctl.d", "80-onvm-hugepages.conf")
SYSCTL_KEY = "vm.nr_hugepages"
FSTAB_FILE = "fstab"
FSTYPE = "hugetlbfs"

Runner = Callable[[list[str]], tuple[int, str, str]]


class HugepageError(Exception):
    """A pool, node, size or mount that cannot be used as asked."""


class ShortfallError(HugepageError):
    """The kernel granted fewer pages than asked; the old count was written back."""

    def __init__(self, message: str, asked: int, got: int, old: int, restored: int):
        super().__init__(message)
        self.asked = asked
        self.got = got
        self.old = old
        self.restored = restored


@dataclass
class Pool:
    """One hugepage pool as sysfs shows it.  ``nr`` is the pool's size as set
    (sysfs' nr_hugepages less surplus pages: pages still in use after the count
    was lowered, which the kernel frees when they are released)."""

    size: str
    node: int | None
    nr: int
    free: int
    surplus: int = 0


# --- sizes, nodes, pools -------------------------------------------------------------------


def size_name(kb: int) -> str:
    """2048 -> '2M', 1048576 -> '1G', 64 -> '64K'."""
    if kb % (1024 * 1024) == 0:
        return "%dG" % (kb // (1024 * 1024))
    if kb % 1024 == 0:
        return "%dM" % (kb // 1024)
    return "%dK" % kb


def size_kb(size: str) -> int:
    try:
        return SIZES_KB[size]
    except KeyError:
        raise HugepageError(
            "size=%s: not a hugepage size (use one of %s)" % (size, ", ".join(SIZES_KB))
        ) from None


def _pools_dir(sysfs_root: str, node: int | None) -> str:
    if node is None:
        return os.path.join(sysfs_root, "kernel", "mm", "hugepages")
    return os.path.join(sysfs_root, "devices", "system", "node", "node%d" % node, "hugepages")


def pool_dir(sysfs_root: str, size: str, node: int | None = None) -> str:
    return os.path.join(_pools_dir(sysfs_root, node), "hugepages-%dkB" % size_kb(size))


def kernel_sizes(sysfs_root: str) -> list[str]:
    """Page sizes this kernel offers, smallest first ('2M', '1G', ...)."""
    kbs = []
    try:
        names = os.listdir(_pools_dir(sysfs_root, None))
    except OSError:
        return []
    for name in names:
        m = re.match(r"^hugepages-(\d+)kB$", name)
        if m:
            kbs.append(int(m.group(1)))
    return [size_name(kb) for kb in sorted(kbs)]


def numa_nodes(sysfs_root: str) -> list[int]:
    try:
        names = os.listdir(os.path.join(sysfs_root, "devices", "system", "node"))
    except OSError:
        return []
    return sorted(int(n[4:]) for n in names if re.match(r"^node\d+$", n))


def _read_int(path: str) -> int:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError) as e:
        raise HugepageError("cannot read %s: %s" % (path, e)) from e


def write_count(path: str, count: int) -> None:
    """Write ``nr_hugepages`` (the kernel applies what it can; read it back)."""
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write("%d\n" % count)
    except OSError as e:
        raise HugepageError("cannot write %d to %s: %s" % (count, path, e.strerror or e)) from e


def read_pool(sysfs_root: str, size: str, node: int | None = None) -> Pool:
    d = pool_dir(sysfs_root, size, node)
    surplus_file = os.path.join(d, "surplus_hugepages")
    surplus = _read_int(surplus_file) if os.path.exists(surplus_file) else 0
    return Pool(
        size=size,
        node=node,
        nr=_read_int(os.path.join(d, "nr_hugepages")) - surplus,
        free=_read_int(os.path.join(d, "free_hugepages")),
        surplus=surplus,
    )


def describe(size: str, node: int | None) -> str:
    return "%s pages%s" % (size, "" if node is None else " on NUMA node %d" % node)


def check_request(sysfs_root: str, procfs_root: str, count: int, size: str, node: int | None) -> None:
    """Refuse what cannot be meant, naming the option: a negative count, a size or
    node this machine lacks, more memory than the machine has."""
    if count < 0:
        raise HugepageError("count=%d: the number of pages must be 0 or more" % count)
    kb = size_kb(size)
    sizes = kernel_sizes(sysfs_root)
    if size not in sizes:
        raise HugepageError(
            "size=%s: this kernel has no %s hugepages (it has: %s)" % (size, size, ", ".join(sizes) or "none")
        )
    if node is not None:
        nodes = numa_nodes(sysfs_root)
        if node not in nodes:
            raise HugepageError(
                "node=%d: no such NUMA node (this machine has: %s)"
                % (node, ", ".join(str(n) for n in nodes) or "none")
            )
        if not os.path.isdir(pool_dir(sysfs_root, size, node)):
            raise HugepageError("node=%d: the node has no %s hugepage pool" % (node, size))
    total = meminfo(procfs_root).get("MemTotal")
    if total is not None and count * kb > total:
        raise HugepageError(
            "count=%d: %d %s pages are %d MiB, more than this machine's memory (%d MiB)"
            % (count, count, size, count * kb // 1024, total // 1024)
        )


def set_count(sysfs_root: str, size: str, node: int | None, count: int) -> Pool:
    """Set the pool to ``count`` pages.  If the kernel grants fewer, write the old
    count back and raise ShortfallError; if the write fails, put the old count back
    should it have moved, and raise HugepageError."""
    path = os.path.join(pool_dir(sysfs_root, size, node), "nr_hugepages")
    old = read_pool(sysfs_root, size, node).nr
    if old == count:
        return read_pool(sysfs_root, size, node)
    try:
        write_count(path, count)
    except HugepageError:
        if read_pool(sysfs_root, size, node).nr != old:
            write_count(path, old)
        raise
    got = read_pool(sysfs_root, size, node).nr
    if got < count:
        write_count(path, old)
        restored = read_pool(sysfs_root, size, node).nr
        msg = "the kernel granted %d of the %d %s asked for (not enough contiguous free memory)" % (
            got,
            count,
            describe(size, node),
        )
        if restored == old:
            msg += "; the count was put back to %d" % old
        else:
            msg += "; putting the count back to %d left %d" % (old, restored)
        if size == "1G":
            msg += "; %s pages are best reserved on the kernel command line" % size
        raise ShortfallError(msg, asked=count, got=got, old=old, restored=restored)
    return read_pool(sysfs_root, size, node)


# --- /proc -----------------------------------------------------------------------------------


def meminfo(procfs_root: str) -> dict[str, int]:
    """/proc/meminfo as {key: number} (kB for sizes, pages for counts)."""
    out: dict[str, int] = {}
    try:
        with open(os.path.join(procfs_root, "meminfo"), encoding="ascii") as f:
            for line in f:
                key, _sep, rest = line.partition(":")
                fields = rest.split()
                if fields and fields[0].isdigit():
                    out[key.strip()] = int(fields[0])
    except OSError:
        pass
    return out


def default_size(procfs_root: str) -> str:
    """The kernel's default hugepage size (the one vm.nr_hugepages and a mount
    without pagesize= use); 2M when /proc/meminfo does not say."""
    kb = meminfo(procfs_root).get("Hugepagesize")
    return size_name(kb) if kb else "2M"


def _unescape(field: str) -> str:
    """fstab and /proc/mounts write space, tab, newline and backslash as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _escape(path: str) -> str:
    return "".join("\\%03o" % ord(c) if c in " \t\n\\" else c for c in path)


@dataclass
class MountEntry:
    source: str
    target: str
    fstype: str
    options: list[str]

    def pagesize(self, default: str) -> str:
        """The page size of a hugetlbfs entry (``pagesize=`` or the default)."""
        for opt in self.options:
            key, _sep, value = opt.partition("=")
            if key == "pagesize":
                return _normalize_size(value)
        return default


def _normalize_size(value: str) -> str:
    m = re.match(r"^(\d+)\s*([kKmMgG])?[bB]?$", value.strip())
    if not m:
        return value
    n = int(m.group(1))
    unit = (m.group(2) or "").upper()
    kb = {"": n // 1024, "K": n, "M": n * 1024, "G": n * 1024 * 1024}[unit]
    return size_name(kb)


def parse_mount_table(text: str) -> list[MountEntry]:
    """Entries of /proc/mounts or /etc/fstab text (comments and blanks skipped)."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#"):
            continue
        options = fields[3].split(",") if len(fields) > 3 else []
        out.append(MountEntry(_unescape(fields[0]), _unescape(fields[1]), fields[2], options))
    return out


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise HugepageError("cannot read %s: %s" % (path, e.strerror or e)) from e


def current_mount(procfs_root: str, path: str) -> MountEntry | None:
    """What is mounted at ``path`` now (the topmost mount), or None."""
    text = _read_text(os.path.join(procfs_root, "mounts")) or ""
    found = None
    for entry in parse_mount_table(text):
        if os.path.normpath(entry.target) == path:
            found = entry
    return found


def mount_state(procfs_root: str, path: str, size: str) -> str:
    """'mounted' (hugetlbfs of that page size at path) or 'absent'; raises when
    something else is mounted there, which this code will not replace."""
    entry = current_mount(procfs_root, path)
    if entry is None:
        return "absent"
    if entry.fstype != FSTYPE:
        raise HugepageError(
            "mount=%s: a %s file system is mounted there, not hugetlbfs; choose another path"
            % (path, entry.fstype)
        )
    have = entry.pagesize(default_size(procfs_root))
    if have != size:
        raise HugepageError(
            "mount=%s: hugetlbfs is mounted there with %s pages, not %s; give the %s pages their own "
            "mount (e.g. mount=%s-%s) or set mount to null" % (path, have, size, size, DEFAULT_MOUNT, size)
        )
    return "mounted"


def mount_hugetlbfs(path: str, size: str, run: Runner) -> None:
    """Create ``path`` if needed and mount hugetlbfs with ``size`` pages on it."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise HugepageError("mount=%s: cannot create the directory: %s" % (path, e.strerror or e)) from e
    rc, out, err = run(["mount", "-t", FSTYPE, "-o", "pagesize=%s" % size, FSTYPE, path])
    if rc != 0:
        raise HugepageError("mount=%s: mount failed (rc=%d): %s" % (path, rc, (err or out).strip()))


# --- persistence -------------------------------------------------------------------------------


def sysctl_path(etc_root: str) -> str:
    return os.path.join(etc_root, SYSCTL_FILE)


def fstab_path(etc_root: str) -> str:
    return os.path.join(etc_root, FSTAB_FILE)


def sysctl_content(count: int) -> str:
    return (
        "# Managed by Ansible (onvm.nfv.hugepages): pages of the default hugepage size,\n"
        "# reserved at boot.  1G and per-NUMA-node pages need the kernel command line.\n"
        "%s = %d\n" % (SYSCTL_KEY, count)
    )


def read_file(path: str) -> str | None:
    """A text file's content, or None when it does not exist."""
    return _read_text(path)


def fstab_line(path: str, size: str) -> str:
    return "%s %s %s pagesize=%s 0 0" % (FSTYPE, _escape(path), FSTYPE, size)


def fstab_with_mount(text: str | None, path: str, size: str, default: str) -> str:
    """fstab ``text`` with a hugetlbfs line for ``path`` of ``size`` pages: an
    existing equivalent line is kept, a hugetlbfs line of another page size is
    replaced, a line mounting another file system there is refused."""
    text = text or ""
    lines = text.splitlines()
    want = fstab_line(path, size)
    out: list[str] = []
    placed = False
    for line in lines:
        entries = parse_mount_table(line)
        if entries and os.path.normpath(entries[0].target) == path:
            entry = entries[0]
            if entry.fstype != FSTYPE:
                raise HugepageError(
                    "mount=%s: /etc/fstab mounts %s there, not hugetlbfs; choose another path"
                    % (path, entry.fstype)
                )
            if placed:
                continue  # a duplicate line for the same mount point: drop it
            placed = True
            if entry.pagesize(default) == size:
                out.append(line)
            else:
                out.append(want)
            continue
        out.append(line)
    if not placed:
        out.append(want)
    return "\n".join(out) + "\n"


def write_file(path: str, content: str, mode: int = 0o644) -> None:
    """Replace ``path`` atomically (same directory temp file, then rename),
    keeping the mode of an existing file."""
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, exist_ok=True)
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            pass
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(content)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        raise HugepageError("cannot write %s: %s" % (path, e.strerror or e)) from e


def can_persist_count(procfs_root: str, size: str, node: int | None) -> bool:
    """Only the machine-wide pool of the default size has a sysctl."""
    return node is None and size == default_size(procfs_root)


def kernel_cmdline_hint(count: int, size: str, node: int | None) -> str:
    """How to make a pool that sysctl cannot set survive a reboot."""
    if node is None:
        return "add 'hugepagesz=%s hugepages=%d' to the kernel command line" % (size, count)
    return (
        "add 'hugepagesz=%s hugepages=%d:%d' to the kernel command line (the per-node form of "
        "hugepages=, on kernels that have it), or run this module again at boot" % (size, node, count)
    )


# --- plan and apply ----------------------------------------------------------------------------


@dataclass
class Plan:
    """What the host has and what it will have: computed without changing anything."""

    size: str
    node: int | None
    count: int
    before: Pool
    pool_file: str
    mount: str | None = None
    mounted: bool = False
    sysctl_file: str | None = None
    sysctl_before: str | None = None
    sysctl_after: str | None = None
    fstab_file: str | None = None
    fstab_before: str | None = None
    fstab_after: str | None = None
    not_persisted: str | None = None  # why the count is not kept across reboots

    @property
    def count_changes(self) -> bool:
        return self.before.nr != self.count

    @property
    def mount_changes(self) -> bool:
        return self.mount is not None and not self.mounted

    @property
    def sysctl_changes(self) -> bool:
        return self.sysctl_file is not None and self.sysctl_before != self.sysctl_after

    @property
    def fstab_changes(self) -> bool:
        return self.fstab_file is not None and self.fstab_before != self.fstab_after

    @property
    def changed(self) -> bool:
        return self.count_changes or self.mount_changes or self.sysctl_changes or self.fstab_changes

    @property
    def persisted(self) -> bool:
        return self.sysctl_file is not None

    def diff(self) -> list[dict[str, str]]:
        """Before/after of the count, the mount and the persistence files (Ansible's diff format)."""
        out = [
            {
                "before_header": "%s (%s)" % (self.pool_file, describe(self.size, self.node)),
                "after_header": "%s (%s)" % (self.pool_file, describe(self.size, self.node)),
                "before": "%d\n" % self.before.nr,
                "after": "%d\n" % self.count,
            }
        ]
        if self.mount is not None:
            want = "hugetlbfs on %s (pagesize=%s)\n" % (self.mount, self.size)
            out.append(
                {
                    "before_header": "mount %s" % self.mount,
                    "after_header": "mount %s" % self.mount,
                    "before": want if self.mounted else "",
                    "after": want,
                }
            )
        for path, before, after in (
            (self.sysctl_file, self.sysctl_before, self.sysctl_after),
            (self.fstab_file, self.fstab_before, self.fstab_after),
        ):
            if path is not None:
                out.append(
                    {
                        "before_header": path,
                        "after_header": path,
                        "before": before or "",
                        "after": after or "",
                    }
                )
        return out


def plan(
    sysfs_root: str,
    procfs_root: str,
    etc_root: str,
    count: int,
    size: str,
    node: int | None,
    mount: str | None,
    persist: bool,
) -> Plan:
    """Validate the request and read the current state; raises HugepageError."""
    check_request(sysfs_root, procfs_root, count, size, node)
    if mount is not None:
        if not os.path.isabs(mount):
            raise HugepageError("mount=%s: must be an absolute path (or null to leave mounts alone)" % mount)
        mount = os.path.normpath(mount)
    p = Plan(
        size=size,
        node=node,
        count=count,
        before=read_pool(sysfs_root, size, node),
        pool_file=os.path.join(pool_dir(sysfs_root, size, node), "nr_hugepages"),
        mount=mount,
    )
    if mount is not None:
        p.mounted = mount_state(procfs_root, mount, size) == "mounted"
    if not persist:
        return p
    if can_persist_count(procfs_root, size, node):
        p.sysctl_file = sysctl_path(etc_root)
        p.sysctl_before = read_file(p.sysctl_file)
        p.sysctl_after = sysctl_content(count)
    elif count > 0:
        p.not_persisted = (
            "%d %s are not kept across reboots (sysctl only sets the default size's machine-wide pool): %s"
            % (
                count,
                describe(size, node),
                kernel_cmdline_hint(count, size, node),
            )
        )
    if mount is not None:
        p.fstab_file = fstab_path(etc_root)
        p.fstab_before = read_file(p.fstab_file)
        p.fstab_after = fstab_with_mount(p.fstab_before, mount, size, default_size(procfs_root))
    return p


def apply(p: Plan, sysfs_root: str, run: Runner) -> Pool:
    """Carry the plan out: the count first (put back on a shortfall), then the
    mount (the count is put back if it fails), then the persistence files."""
    after = set_count(sysfs_root, p.size, p.node, p.count)
    if p.mount_changes and p.mount is not None:
        try:
            mount_hugetlbfs(p.mount, p.size, run)
        except HugepageError as e:
            if p.count_changes:
                write_count(p.pool_file, p.before.nr)
                raise HugepageError("%s; the count was put back to %d" % (e, p.before.nr)) from e
            raise
    if p.sysctl_changes and p.sysctl_file is not None and p.sysctl_after is not None:
        write_file(p.sysctl_file, p.sysctl_after)
    if p.fstab_changes and p.fstab_file is not None and p.fstab_after is not None:
        write_file(p.fstab_file, p.fstab_after)
    return after
