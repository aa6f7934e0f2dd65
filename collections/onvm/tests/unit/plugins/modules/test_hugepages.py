# SPDX-License-Identifier: BSD-3-Clause
"""onvm.nfv.hugepages against fake sysfs / procfs / etc trees, with a "kernel"
that may grant fewer pages than asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic

from ansible_collections.onvm.nfv.plugins.module_utils import hugepages as hp
from ansible_collections.onvm.nfv.plugins.modules import hugepages
from ansible_collections.onvm.nfv.tests.unit.plugins.module_utils.fakesys import FakeHugeKernel, FakeTree
from ansible_collections.onvm.nfv.tests.unit.plugins.modules.module_runner import ModuleRunner, warnings

FSTAB = "UUID=1234 / ext4 defaults 0 1\n"


class Host:
    def __init__(self, tree: FakeTree, kernel: FakeHugeKernel, runner: ModuleRunner):
        self.tree = tree
        self.kernel = kernel
        self.runner = runner
        self.commands: list[list[str]] = []
        self.mount_rc = 0
        self.mnt = str(tree.base / "hugepages")

    def run(self, check_mode: bool = False, diff: bool = False, **args: Any) -> dict[str, Any]:
        args.setdefault("mount", self.mnt)
        args.setdefault("sysfs_root", str(self.tree.sys))
        args.setdefault("procfs_root", str(self.tree.proc))
        args.setdefault("etc_root", str(self.tree.etc))
        return self.runner(hugepages.main, check_mode=check_mode, diff=diff, **args)

    def nr(self, size: str = "2M", node: int | None = None) -> int:
        return int(Path(hp.pool_dir(str(self.tree.sys), size, node), "nr_hugepages").read_text())

    @property
    def sysctl(self) -> Path:
        return self.tree.etc / "sysctl.d" / "80-onvm-hugepages.conf"

    @property
    def fstab(self) -> str:
        return (self.tree.etc / "fstab").read_text()


@pytest.fixture
def hh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Host:
    tree = FakeTree(tmp_path)
    tree.add_pool("2M")
    tree.add_pool("1G")
    tree.add_pool("2M", node=0)
    tree.add_pool("1G", node=0)
    (tree.etc / "fstab").write_text(FSTAB)
    kernel = FakeHugeKernel()
    monkeypatch.setattr(hp, "write_count", kernel.write_count)
    h = Host(tree, kernel, ModuleRunner(capsys))
    tree.set_mounts("proc /proc proc rw 0 0\nnodev %s hugetlbfs rw,relatime,pagesize=2M 0 0\n" % h.mnt)

    def run_command(module: basic.AnsibleModule, cmd: list[str], **kw: Any) -> tuple[int, str, str]:
        h.commands.append(cmd)
        return (h.mount_rc, "", "mount: permission denied" if h.mount_rc else "")

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return h


def test_sets_count_and_persists(hh: Host) -> None:
    r = hh.run(count=512)
    assert not r.get("failed"), r
    assert r["changed"] is True
    assert (r["count_before"], r["count_after"], r["free"]) == (0, 512, 512)
    assert (r["size"], r["node"], r["mount"]) == ("2M", None, hh.mnt)
    assert r["persisted"] is True
    assert hh.nr() == 512
    assert "vm.nr_hugepages = 512\n" in hh.sysctl.read_text()
    assert hh.fstab == FSTAB + "hugetlbfs %s hugetlbfs pagesize=2M 0 0\n" % hh.mnt
    assert hh.commands == []  # already mounted


def test_second_run_changes_nothing(hh: Host) -> None:
    hh.run(count=512)
    writes, sysctl, fstab = len(hh.kernel.writes), hh.sysctl.read_text(), hh.fstab
    r = hh.run(count=512, diff=True)
    assert r["changed"] is False
    assert len(hh.kernel.writes) == writes
    assert hh.sysctl.read_text() == sysctl and hh.fstab == fstab
    assert all(d["before"] == d["after"] for d in r["diff"])


def test_check_mode_changes_nothing(hh: Host) -> None:
    r = hh.run(count=512, check_mode=True, diff=True)
    assert r["changed"] is True
    assert (r["count_before"], r["count_after"]) == (0, 512)
    assert hh.kernel.writes == []
    assert hh.nr() == 0
    assert not hh.sysctl.exists()
    assert hh.fstab == FSTAB
    count_diff, mount_diff, sysctl_diff, fstab_diff = r["diff"]
    assert (count_diff["before"], count_diff["after"]) == ("0\n", "512\n")
    assert mount_diff["before"] == mount_diff["after"]  # mounted already
    assert sysctl_diff["before"] == "" and "vm.nr_hugepages = 512" in sysctl_diff["after"]
    assert fstab_diff["before"] == FSTAB and fstab_diff["after"].startswith(FSTAB)


def test_shortfall_restores_the_old_count(hh: Host) -> None:
    hh.tree.add_pool("2M", nr=64)
    hh.kernel.limit = 300
    r = hh.run(count=512)
    assert r["failed"] is True
    assert "granted 300 of the 512" in r["msg"]
    assert "put back to 64" in r["msg"]
    assert r["got"] == 300
    assert (r["count_before"], r["count_after"]) == (64, 64)
    assert r["changed"] is False
    pool = hp.pool_dir(str(hh.tree.sys), "2M")
    assert [n for _path, n in hh.kernel.writes] == [512, 64]
    assert hh.kernel.writes[0][0] == str(Path(pool, "nr_hugepages"))
    assert hh.nr() == 64
    assert not hh.sysctl.exists() and hh.fstab == FSTAB


def test_shortfall_on_a_node_pool(hh: Host) -> None:
    hh.kernel.limit = 1
    r = hh.run(count=2, size="1G", node=0, mount=None, persist=False)
    assert r["failed"] is True and "granted 1 of the 2 1G pages on NUMA node 0" in r["msg"]
    assert hh.nr("1G", 0) == 0


def test_negative_count_is_refused(hh: Host) -> None:
    r = hh.run(count=-1)
    assert r["failed"] is True and r["msg"].startswith("count=-1")
    assert hh.kernel.writes == []


def test_more_than_the_memory_is_refused(hh: Host) -> None:
    r = hh.run(count=10_000_000)
    assert r["failed"] is True and "count=10000000" in r["msg"] and "memory" in r["msg"]


def test_size_the_kernel_lacks(hh: Host, tmp_path: Path) -> None:
    for d in Path(hp.pool_dir(str(hh.tree.sys), "1G")).iterdir():
        d.unlink()
    Path(hp.pool_dir(str(hh.tree.sys), "1G")).rmdir()
    r = hh.run(count=1, size="1G", mount=None)
    assert r["failed"] is True
    assert "size=1G: this kernel has no 1G hugepages (it has: 2M)" in r["msg"]


def test_size_not_a_choice(hh: Host) -> None:
    r = hh.run(count=1, size="4M")
    assert r["failed"] is True and "size" in r["msg"] and "2M" in r["msg"]


def test_unknown_node(hh: Host) -> None:
    r = hh.run(count=1, node=3)
    assert r["failed"] is True and "node=3: no such NUMA node (this machine has: 0)" in r["msg"]


def test_node_pool_is_set_and_not_pretended_persistent(hh: Host) -> None:
    mnt = str(hh.tree.base / "hugepages-1G")
    r = hh.run(count=2, size="1G", node=0, mount=mnt)
    assert not r.get("failed"), r
    assert r["changed"] is True and r["node"] == 0 and r["count_after"] == 2
    assert hh.nr("1G", 0) == 2 and hh.nr("1G") == 0
    assert r["persisted"] is False and r["sysctl_file"] is None
    assert not hh.sysctl.exists()
    assert any("kernel command line" in w and "hugepages=0:2" in w for w in warnings(r))
    assert hh.commands == [["mount", "-t", "hugetlbfs", "-o", "pagesize=1G", "hugetlbfs", mnt]]
    assert Path(mnt).is_dir()
    assert "hugetlbfs %s hugetlbfs pagesize=1G 0 0\n" % mnt in hh.fstab


def test_global_1g_is_not_pretended_persistent(hh: Host) -> None:
    r = hh.run(count=1, size="1G", mount=None)
    assert r["persisted"] is False
    assert any("hugepagesz=1G hugepages=1" in w for w in warnings(r)), warnings(r)
    assert not hh.sysctl.exists()


def test_mount_null_leaves_mounts_alone(hh: Host) -> None:
    r = hh.run(count=8, mount=None)
    assert r["mount"] is None and r["changed"] is True
    assert hh.fstab == FSTAB and hh.commands == []
    assert hh.sysctl.exists()


def test_persist_false_writes_no_files(hh: Host) -> None:
    r = hh.run(count=8, persist=False)
    assert r["changed"] is True and r["persisted"] is False
    assert not hh.sysctl.exists() and hh.fstab == FSTAB
    assert warnings(r) == []


def test_mount_of_another_page_size_is_refused(hh: Host) -> None:
    r = hh.run(count=1, size="1G")
    assert r["failed"] is True
    assert r["msg"].startswith("mount=%s: hugetlbfs is mounted there with 2M pages" % hh.mnt)
    assert hh.kernel.writes == []


def test_another_file_system_is_refused(hh: Host) -> None:
    hh.tree.set_mounts("tmpfs %s tmpfs rw 0 0\n" % hh.mnt)
    r = hh.run(count=1)
    assert r["failed"] is True and "a tmpfs file system is mounted there" in r["msg"]
    assert hh.kernel.writes == []


def test_failed_mount_puts_the_count_back(hh: Host) -> None:
    hh.tree.set_mounts("")
    hh.mount_rc = 32
    r = hh.run(count=16)
    assert r["failed"] is True
    assert "mount failed (rc=32)" in r["msg"] and "put back to 0" in r["msg"]
    assert hh.nr() == 0 and r["count_after"] == 0
    assert not hh.sysctl.exists()


def test_mounts_when_absent(hh: Host) -> None:
    hh.tree.set_mounts("")
    r = hh.run(count=16, diff=True)
    assert r["changed"] is True
    assert hh.commands == [["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "hugetlbfs", hh.mnt]]
    mount_diff = r["diff"][1]
    assert mount_diff["before"] == "" and "hugetlbfs on %s" % hh.mnt in mount_diff["after"]


def test_existing_equivalent_fstab_line_is_kept(hh: Host) -> None:
    line = "nodev %s hugetlbfs defaults 0 0\n" % hh.mnt
    (hh.tree.etc / "fstab").write_text(FSTAB + line)
    hh.run(count=4)
    assert hh.fstab == FSTAB + line


def test_lowering_below_pages_in_use(hh: Host) -> None:
    hh.tree.add_pool("2M", nr=64, free=54)
    hh.kernel.in_use = 10
    r = hh.run(count=0, mount=None)
    assert not r.get("failed"), r
    assert (r["count_before"], r["count_after"]) == (64, 0)
    assert hh.nr() == 10  # sysfs still counts the 10 pages in use, as surplus
    again = hh.run(count=0, mount=None)
    assert again["changed"] is False


def test_at_least_raises_a_smaller_pool_and_leaves_a_larger_one(hh: Host) -> None:
    r = hh.run(count=64, at_least=True)
    assert r["changed"] and hh.nr() == 64
    # another user of the pool raised it: a floor of 64 takes nothing back
    hh.kernel.write_count(str(Path(hp.pool_dir(str(hh.tree.sys), "2M", None), "nr_hugepages")), 128)
    r = hh.run(count=64, at_least=True, diff=True)
    assert r["count_before"] == 128 and r["count_after"] == 128 and hh.nr() == 128
    assert "vm.nr_hugepages = 64" in hh.sysctl.read_text()  # the floor, for the next boot
    r = hh.run(count=64, at_least=True)
    assert r["changed"] is False
    # the others move the pool again: still nothing to change here
    hh.kernel.write_count(str(Path(hp.pool_dir(str(hh.tree.sys), "2M", None), "nr_hugepages")), 512)
    assert hh.run(count=64, at_least=True)["changed"] is False
    # without it the count is exact: lowered
    r = hh.run(count=64)
    assert r["changed"] and hh.nr() == 64
