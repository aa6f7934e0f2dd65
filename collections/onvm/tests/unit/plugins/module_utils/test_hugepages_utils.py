# SPDX-License-Identifier: BSD-3-Clause
"""module_utils/hugepages.py: sizes, pools, the shortfall rollback, mounts and persistence files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import hugepages as hp
from ansible_collections.onvm.nfv.tests.unit.plugins.module_utils.fakesys import FakeHugeKernel, FakeTree


@pytest.fixture
def tree(tmp_path: Path) -> FakeTree:
    t = FakeTree(tmp_path)
    t.add_pool("2M", nr=16, free=10)
    t.add_pool("2M", node=0)
    t.add_pool("2M", node=1)
    return t


def test_size_names() -> None:
    assert [hp.size_name(kb) for kb in (64, 2048, 32768, 1048576)] == ["64K", "2M", "32M", "1G"]
    assert hp.size_kb("1G") == 1048576
    with pytest.raises(hp.HugepageError, match="size=4M"):
        hp.size_kb("4M")


def test_sizes_nodes_and_pools(tree: FakeTree) -> None:
    root = str(tree.sys)
    assert hp.kernel_sizes(root) == ["2M"]
    tree.add_pool("1G")
    assert hp.kernel_sizes(root) == ["2M", "1G"]
    assert hp.numa_nodes(root) == [0, 1]
    assert hp.read_pool(root, "2M") == hp.Pool(size="2M", node=None, nr=16, free=10)
    assert hp.kernel_sizes(str(tree.base / "nothing")) == []


def test_check_request(tree: FakeTree) -> None:
    root, proc = str(tree.sys), str(tree.proc)
    hp.check_request(root, proc, 0, "2M", None)
    hp.check_request(root, proc, 8, "2M", 1)
    with pytest.raises(hp.HugepageError, match=r"^count=-5"):
        hp.check_request(root, proc, -5, "2M", None)
    with pytest.raises(hp.HugepageError, match=r"^size=1G: this kernel has no 1G"):
        hp.check_request(root, proc, 1, "1G", None)
    with pytest.raises(hp.HugepageError, match=r"^node=2: no such NUMA node \(this machine has: 0, 1\)"):
        hp.check_request(root, proc, 1, "2M", 2)
    with pytest.raises(hp.HugepageError, match=r"^count=4000: .* more than this machine's memory"):
        hp.check_request(root, proc, 4000, "2M", None)  # 8000 MiB > 7812 MiB


def test_set_count(tree: FakeTree, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = FakeHugeKernel(in_use=6)
    monkeypatch.setattr(hp, "write_count", kernel.write_count)
    pool = hp.set_count(str(tree.sys), "2M", None, 64)
    assert (pool.nr, pool.free) == (64, 58)
    assert hp.set_count(str(tree.sys), "2M", None, 64).nr == 64
    assert len(kernel.writes) == 1


def test_shortfall_writes_the_old_count_back(tree: FakeTree, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = FakeHugeKernel(limit=40)
    monkeypatch.setattr(hp, "write_count", kernel.write_count)
    with pytest.raises(hp.ShortfallError) as exc:
        hp.set_count(str(tree.sys), "2M", 0, 100)
    e = exc.value
    assert (e.asked, e.got, e.old, e.restored) == (100, 40, 0, 0)
    assert "granted 40 of the 100 2M pages on NUMA node 0" in str(e)
    assert [n for _path, n in kernel.writes] == [100, 0]
    assert hp.read_pool(str(tree.sys), "2M", 0).nr == 0


def test_default_size(tree: FakeTree) -> None:
    assert hp.default_size(str(tree.proc)) == "2M"
    (tree.proc / "meminfo").write_text("MemTotal: 100 kB\nHugepagesize:    1048576 kB\n")
    assert hp.default_size(str(tree.proc)) == "1G"
    assert hp.can_persist_count(str(tree.proc), "1G", None)
    assert not hp.can_persist_count(str(tree.proc), "1G", 0)
    assert hp.default_size(str(tree.base / "nothing")) == "2M"


def test_mount_table_escapes() -> None:
    entries = hp.parse_mount_table(
        "# comment\n\nnodev /mnt/huge\\040pages hugetlbfs rw,pagesize=1024M 0 0\nnone /x tmpfs\n"
    )
    assert [(e.target, e.fstype) for e in entries] == [("/mnt/huge pages", "hugetlbfs"), ("/x", "tmpfs")]
    assert entries[0].pagesize("2M") == "1G"
    assert entries[1].pagesize("2M") == "2M"
    assert hp.fstab_line("/mnt/huge pages", "2M") == "hugetlbfs /mnt/huge\\040pages hugetlbfs pagesize=2M 0 0"


def test_mount_state(tree: FakeTree) -> None:
    proc = str(tree.proc)
    tree.set_mounts("hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n")
    assert hp.mount_state(proc, "/dev/hugepages", "2M") == "mounted"
    assert hp.mount_state(proc, "/dev/hugepages-1G", "1G") == "absent"
    with pytest.raises(hp.HugepageError, match="with 2M pages, not 1G"):
        hp.mount_state(proc, "/dev/hugepages", "1G")
    # The topmost of stacked mounts counts.
    tree.set_mounts("hugetlbfs /mnt hugetlbfs rw,pagesize=2M 0 0\ntmpfs /mnt tmpfs rw 0 0\n")
    with pytest.raises(hp.HugepageError, match="a tmpfs file system is mounted there"):
        hp.mount_state(proc, "/mnt", "2M")


def test_mount_hugetlbfs(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def ok(cmd: list[str]) -> tuple[int, str, str]:
        calls.append(cmd)
        return 0, "", ""

    target = str(tmp_path / "a" / "b")
    hp.mount_hugetlbfs(target, "1G", ok)
    assert os.path.isdir(target)
    assert calls == [["mount", "-t", "hugetlbfs", "-o", "pagesize=1G", "hugetlbfs", target]]
    with pytest.raises(hp.HugepageError, match=r"mount failed \(rc=32\): nope"):
        hp.mount_hugetlbfs(target, "1G", lambda cmd: (32, "", "nope\n"))


def test_fstab_with_mount() -> None:
    base = "UUID=1 / ext4 defaults 0 1\n"
    assert hp.fstab_with_mount(None, "/dev/hugepages", "2M", "2M") == (
        "hugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0\n"
    )
    added = hp.fstab_with_mount(base, "/dev/hugepages", "2M", "2M")
    assert added == base + "hugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0\n"
    assert hp.fstab_with_mount(added, "/dev/hugepages", "2M", "2M") == added
    # Equivalent line (default page size) kept; other page size replaced; duplicates dropped.
    own = base + "none /dev/hugepages hugetlbfs mode=1770 0 0\n"
    assert hp.fstab_with_mount(own, "/dev/hugepages", "2M", "2M") == own
    other = base + "none /dev/hugepages hugetlbfs pagesize=1G 0 0\nnone /dev/hugepages/ hugetlbfs 0 0\n"
    assert hp.fstab_with_mount(other, "/dev/hugepages", "2M", "2M") == added
    with pytest.raises(hp.HugepageError, match="/etc/fstab mounts tmpfs there"):
        hp.fstab_with_mount(base + "tmpfs /dev/hugepages tmpfs 0 0\n", "/dev/hugepages", "2M", "2M")


def test_write_file_is_atomic_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "fstab"
    hp.write_file(str(path), "a\n")
    assert path.read_text() == "a\n" and stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    hp.write_file(str(path), "b\n")
    assert path.read_text() == "b\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["fstab"]


def test_plan_for_a_node_pool_does_not_pretend(tree: FakeTree) -> None:
    p = hp.plan(str(tree.sys), str(tree.proc), str(tree.etc), 4, "2M", 1, None, True)
    assert p.changed and not p.persisted and p.sysctl_file is None
    assert p.not_persisted is not None and "hugepages=1:4" in p.not_persisted
    p = hp.plan(str(tree.sys), str(tree.proc), str(tree.etc), 0, "2M", 1, None, True)
    assert not p.changed and p.not_persisted is None
    with pytest.raises(hp.HugepageError, match=r"^mount=relative: must be an absolute path"):
        hp.plan(str(tree.sys), str(tree.proc), str(tree.etc), 0, "2M", None, "relative", True)


def test_failed_write_puts_a_moved_count_back(tree: FakeTree, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = FakeHugeKernel(limit=20)

    def partial_then_error(path: str, count: int) -> None:
        kernel.write_count(path, count)
        if count == 100:
            raise hp.HugepageError("cannot write 100 to %s: Cannot allocate memory" % path)

    monkeypatch.setattr(hp, "write_count", partial_then_error)
    with pytest.raises(hp.HugepageError, match="Cannot allocate memory"):
        hp.set_count(str(tree.sys), "2M", None, 100)
    assert [n for _path, n in kernel.writes] == [100, 16]
    assert hp.read_pool(str(tree.sys), "2M").nr == 16
