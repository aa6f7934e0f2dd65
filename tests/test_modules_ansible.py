"""Every module of onvm.nfv run the way users run it: through the real
``ansible`` ad-hoc command or ``ansible-playbook`` (AnsiballZ: the module and
the module_utils' .py files zipped and run by a new Python), not in-process.

Against real parts: an onvm-mgr the manager module itself starts for a host
of the test's own, NF containers, a Redis for the scaler. For each module: a
first run changes, a second changes nothing, check mode changes nothing and
reports the diff, a bad input fails with a clear message and nothing changed.
Two parts have no real counterpart here: dpdk_bind binds and gives back a
device of a fake sysfs tree (its ``sysfs_root``) whose "kernel" is a thread of
this test; on the machine's own NIC it is run in check mode only (refused).
hugepages changes a fake pool; on the machine's pool (which must keep its
pages) it runs in check mode only, or with a count it refuses.

Results are read as JSON from the callback tests/callback_plugins/onvm_json.py
(ansible-core ships no json callback)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import global_view, manager_proc, nf_container
from ansible_collections.onvm.nfv.plugins.module_utils import onvm_stats as stats_mod
from ansible_collections.onvm.nfv.plugins.module_utils.hugepages import read_pool
from ansible_collections.onvm.nfv.plugins.module_utils.supervise import Daemon
from ansible_collections.onvm.nfv.tests.unit.plugins.module_utils.fakesys import FakeTree
from ansible_collections.onvm.nfv.tests.unit.plugins.modules.test_dpdk_bind_real import eth0_pci_address
from onvm.lab.hugepages import free_pages
from onvm.lab.manager import REPO, binary, leftovers
from onvm.lab.promscrape import free_port
from onvm.lab.redis_server import RedisServer
from onvm.lab.single_host import wait_until

VENV = os.path.join(REPO, ".venv", "bin")
PYTHON = os.path.join(VENV, "python")
SCALER = os.path.join(VENV, "onvm-scaler")
INSTALLED_HEADER = "/usr/include/onvm/onvm_stats.h"
SOURCE_HEADER = os.path.join(REPO, "native", "include", "onvm", "onvm_stats.h")
# run the rest of the command with an empty /usr/include/onvm (in its own mount namespace)
HIDE_INCLUDE = 'mount -t tmpfs onvm-test /usr/include/onvm && exec "$@"'
# the modules run on the host's own Python, as a deploy runs them (Debian's python3-docker, python3-cffi)
HOST_PYTHON = "/usr/bin/python3"
CONNECTION = ["-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=" + HOST_PYTHON]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ONVM_STATS_HEADER", None)  # the module must find the header as on a deployed host
    env.update(
        ANSIBLE_STDOUT_CALLBACK="onvm_json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",  # ad-hoc uses the stdout callback only with this
        ANSIBLE_CALLBACK_PLUGINS=os.path.join(REPO, "tests", "callback_plugins"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    return env


def _run(cmd: list[str], timeout: float) -> tuple[int, dict[str, Any]]:
    """Run an ansible command from the repository (its ansible.cfg finds the
    collection); its return code and the callback's JSON document."""
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout)
    try:
        doc: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(
            "%s printed no JSON (rc %d):\n%s\n%s" % (cmd[0], proc.returncode, proc.stdout, proc.stderr)
        ) from None
    return proc.returncode, doc


def ansible(
    module: str,
    args: dict[str, Any],
    check: bool = False,
    diff: bool = False,
    timeout: float = 300,
    prefix: tuple[str, ...] = (),
) -> dict[str, Any]:
    """``ansible localhost -m onvm.nfv.<module> -a <args as JSON>`` (after
    ``prefix``, a command that runs it): the result."""
    cmd = [*prefix, os.path.join(VENV, "ansible"), "localhost", *CONNECTION, "-m", "onvm.nfv." + module]
    cmd += ["-a", json.dumps(args)] + ["--check"] * check + ["--diff"] * diff
    rc, doc = _run(cmd, timeout)
    (play,) = doc["plays"]
    (task,) = play["tasks"]
    result: dict[str, Any] = task["hosts"]["localhost"]
    assert task["task"]["action"] == "onvm.nfv." + module
    assert (rc != 0) == bool(result.get("failed")), (rc, result)
    return result


def playbook(
    path: Path, extra: dict[str, Any] | None = None, check: bool = False, timeout: float = 300
) -> tuple[int, dict[str, Any]]:
    """``ansible-playbook PATH``: return code, and the JSON document."""
    cmd = [os.path.join(VENV, "ansible-playbook"), *CONNECTION, str(path)]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    cmd += ["--check", "--diff"] * check
    return _run(cmd, timeout)


def task_results(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task name -> localhost's result, over the plays of a playbook run."""
    return {t["task"]["name"]: t["hosts"]["localhost"] for p in doc["plays"] for t in p["tasks"]}


def failures(doc: dict[str, Any]) -> dict[str, str]:
    """Task name -> message of the failed tasks of a run (for assertion messages)."""
    return {name: str(r.get("msg")) for name, r in task_results(doc).items() if r.get("failed")}


def mgr_args(host: str, **kw: Any) -> dict[str, Any]:
    return dict(host=host, binary=binary("onvm-mgr"), ports=["net_null0"], supervisor="detached", **kw)


def scaler_running(host: str) -> int | None:
    pid: int | None = Daemon("onvm-scaler-%s" % host, [SCALER]).pid()
    return pid


@pytest.fixture
def host(tag: str, hugepages: int, built: None, docker_client: Any) -> Iterator[str]:
    """A host name of this test's own; whatever the modules started for it
    (scaler, NF containers, manager) is removed afterwards, pass or fail."""
    name = "t" + tag
    with contextlib.ExitStack() as cleanup:  # last first; each runs even if one before it fails
        cleanup.callback(subprocess.run, ["rm", "-rf", "/etc/onvm/" + name], check=False)
        cleanup.callback(manager_proc.stop, name)
        cleanup.callback(nf_container.remove_host, docker_client, name)
        cleanup.callback(Daemon("onvm-scaler-%s" % name, [SCALER]).stop, timeout=10)
        yield name


ARTIFACTS = os.path.join(REPO, "dist")  # scripts/build-artifacts.sh (setup.sh runs it)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The artifacts installed the way a deploy installs them: the role
    onvm_host's install tasks, run by ansible-playbook (the onvm-dataplane
    package, with the stats layout header, and the NF images). Returns the
    play."""
    play = tmp_path_factory.mktemp("header") / "install.yml"
    play.write_text(
        "- name: The artifacts of onvm_host\n"
        "  hosts: localhost\n"
        "  gather_facts: false\n"
        "  vars:\n"
        "    onvm_names: {agent_dir: /opt/onvm/modtest}\n"
        "    onvm_host_install_packages: false\n"
        "  tasks:\n"
        "    - name: Install them\n"
        "      ansible.builtin.include_role:\n"
        "        name: onvm.nfv.onvm_host\n"
        "        tasks_from: install\n"
    )
    rc, doc = playbook(play, {"onvm_artifacts_dir": ARTIFACTS})  # installs them, or finds them installed
    assert rc == 0 and doc["stats"]["localhost"]["failures"] == 0, failures(doc)
    return play


# --- the artifacts and the stats header --------------------------------------------------------


def test_the_role_installs_the_built_package_and_images_idempotently(installed: Path) -> None:
    with open(os.path.join(ARTIFACTS, "manifest.json")) as f:
        manifest = json.load(f)
    version = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", manifest["package"]], capture_output=True, text=True
    ).stdout
    assert version == manifest["version"]
    with open(INSTALLED_HEADER, "rb") as a, open(SOURCE_HEADER, "rb") as b:
        assert a.read() == b.read()
    assert os.stat(INSTALLED_HEADER).st_mode & 0o777 == 0o644
    ids = {i["image"]: i["id"] for i in manifest["images"]}
    for image, want in ids.items():
        inspect = ["docker", "image", "inspect", "-f", "{{.Id}}", image]
        got = subprocess.run(inspect, capture_output=True, text=True)
        assert got.stdout.strip() == want, image
    for check in (False, True):
        rc, doc = playbook(installed, {"onvm_artifacts_dir": ARTIFACTS}, check=check)
        assert rc == 0 and doc["stats"]["localhost"]["changed"] == 0, doc
    # the copies went once installed
    assert not os.path.isdir("/opt/onvm/modtest/images") or not os.listdir("/opt/onvm/modtest/images")
    # no artifacts where the inventory says: one message saying what to run
    rc, doc = playbook(installed, {"onvm_artifacts_dir": "/nonexistent-onvm"})
    assert rc != 0
    failed = [r for r in task_results(doc).values() if r.get("failed")]
    assert len(failed) == 1 and failed[0]["msg"] == (
        "no /nonexistent-onvm/manifest.json: onvm_artifacts_dir names the directory "
        "scripts/build-artifacts.sh filled on the control node (the data plane package and the NF "
        "images hosts are given); run it there"
    )
    subprocess.run(["rm", "-rf", "/opt/onvm/modtest"], check=True)


def test_without_the_header_the_reader_says_where_it_looked_and_what_installs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ONVM_STATS_HEADER", raising=False)
    monkeypatch.setattr(stats_mod, "HEADER_NAME", "onvm_stats_absent.h")
    with pytest.raises(stats_mod.StatsError) as err:
        stats_mod.find_header()
    msg = str(err.value)
    assert msg.startswith(
        "cannot find onvm_stats_absent.h, the stats layout; looked at $ONVM_STATS_HEADER (unset), "
    )
    assert "/usr/include/onvm/onvm_stats_absent.h" in msg and "native/include/onvm" in msg
    assert "the onvm-dataplane package installs it" in msg and "set ONVM_STATS_HEADER" in msg


@pytest.mark.dataplane
def test_a_new_build_of_the_manager_at_the_same_path_restarts_it(host: str, tmp_path: Path) -> None:
    """What installing a new onvm-dataplane package does: the binary at the same path has other
    content; the manager module restarts the manager on it (check mode says so and touches
    nothing); the same build again changes nothing."""
    exe = tmp_path / "onvm-mgr"
    exe.write_bytes(Path(binary("onvm-mgr")).read_bytes())
    exe.chmod(0o755)
    args = {**mgr_args(host), "binary": str(exe)}
    r = ansible("manager", args)
    assert r["changed"]
    pid = r["pid"]
    assert ansible("manager", args)["changed"] is False
    # another build, put in place as dpkg does (a new file renamed over the old one; an ELF
    # runs with bytes appended)
    new = tmp_path / "onvm-mgr.dpkg-new"
    new.write_bytes(exe.read_bytes() + b"\0another build")
    new.chmod(0o755)
    new.rename(exe)
    r = ansible("manager", args, check=True)
    assert r["changed"] and manager_proc.status(host)["pid"] == pid
    r = ansible("manager", args)
    assert r["changed"] and r["pid"] != pid and manager_proc.status(host)["pid"] == r["pid"]
    assert ansible("manager", args)["changed"] is False


@pytest.mark.dataplane
def test_a_new_build_of_an_image_under_the_same_tag_rolls_its_instances(
    host: str, docker_client: Any
) -> None:
    """What a new artifacts build does to a running deployment: roles/onvm_host loads the new
    image under the same tag, the nf module sees another image id and replaces the instances
    (new ones first); the same build again changes nothing."""
    image = "onvm/roll-%s:1" % host

    def build(label: str) -> str:
        dockerfile = "FROM onvm/forward:0.1.0\nLABEL org.onvm.test=%s\n" % label
        subprocess.run(
            ["docker", "build", "-q", "-t", image, "-"],
            input=dockerfile,
            text=True,
            check=True,
            capture_output=True,
        )
        return str(docker_client.images.get(image).id)

    try:
        first = build("a")
        assert not ansible("manager", mgr_args(host)).get("failed")
        args = dict(host=host, service="fwd", image=image, instances=2)
        assert ansible("nf", args)["changed"]
        before = {c.name: c.id for c in nf_container.find(docker_client, host)}
        assert ansible("nf", args)["changed"] is False
        second = build("b")
        assert second != first
        r = ansible("nf", args, check=True, diff=True)
        assert r["changed"] and sorted(r["replaced"]) == sorted(before)
        assert {c.name: c.id for c in nf_container.find(docker_client, host)} == before  # check: untouched
        r = ansible("nf", args)
        assert r["changed"] and sorted(r["replaced"]) == sorted(before)
        after = nf_container.find(docker_client, host)
        assert len(after) == 2 and all(c.image.id == second for c in after)
        assert not {c.id for c in after} & set(before.values())
        assert ansible("nf", args)["changed"] is False
    finally:
        nf_container.remove_host(docker_client, host)
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


# --- manager -----------------------------------------------------------------------------------


@pytest.mark.dataplane
def test_manager_module(host: str) -> None:
    r = ansible("manager", mgr_args(host), check=True, diff=True)
    assert r["changed"] and r["diff"]["before"]["running"] is False and r["diff"]["after"]["running"]
    assert r["diff"]["after"]["config"]["ports"] == ["net_null0"]
    assert not manager_proc.status(host)["answers"] and leftovers(host) == []

    # refused, nothing started: a bad value, the machine's own interface
    r = ansible("manager", mgr_args(host, mem_mb=8))
    assert r["failed"] and r["msg"] == "mem_mb: must be at least 16, got 8"
    r = ansible("manager", {**mgr_args(host), "ports": ["net_af_packet0,iface=eth0"]})
    assert r["failed"] and "refusing interface 'eth0'" in r["msg"], r["msg"]
    assert not manager_proc.status(host)["answers"] and leftovers(host) == []

    r = ansible("manager", mgr_args(host))
    assert r["changed"] and r["pid"] > 0 and r["supervisor"] == "detached"
    pid = r["pid"]
    assert manager_proc.status(host)["pid"] == pid
    r = ansible("manager", mgr_args(host))
    assert r["changed"] is False and r["pid"] == pid
    r = ansible("manager", mgr_args(host, mem_mb=80), check=True, diff=True)
    before, after = r["diff"]["before"]["config"], r["diff"]["after"]["config"]
    assert r["changed"] and (before["mem_mb"], after["mem_mb"]) == (64, 80)
    r = ansible("manager", {**mgr_args(host), "host": "no/slashes"})
    assert r["failed"] and r["msg"] == "host: 'no/slashes' is not a valid name (1-31 of [A-Za-z0-9_.-])"
    assert manager_proc.status(host)["pid"] == pid  # neither check mode nor a refusal touched it

    # a change the new manager would refuse: checked first (onvm-mgr --check), in check mode
    # too, and the running manager is not stopped for it
    for bad, says in (
        ({"ports": ["net_null0", "virtio2"]}, "unknown port 'virtio2'"),
        ({"ports": ["net_af_packet0,iface=eth0"]}, "refusing interface 'eth0'"),
        ({"core": 64}, "--core 64: no such cpu"),
        ({"mem_mb": 1 << 20}, "not enough hugepages"),
    ):
        for check in (True, False):
            r = ansible("manager", {**mgr_args(host), **bad}, check=check)
            assert r["failed"] and "the running manager (pid %d) was not touched" % pid in r["msg"], r
            assert says in r["msg"], r["msg"]
            assert manager_proc.status(host)["pid"] == pid
    # one that passes the check and still does not start (a pool that does not fit its memory):
    # the previous configuration is started again
    r = ansible("manager", mgr_args(host, mem_mb=16, mbufs=1 << 20))
    assert r["failed"] and "cannot create a pool" in r["msg"] and "rolled back" in r["msg"], r["msg"]
    now = manager_proc.status(host)
    assert now["answers"] and now["pid"] != pid and now["config"]["config"]["mem_mb"] == 64
    r = ansible("manager", mgr_args(host))
    assert r["changed"] is False and r["pid"] == now["pid"]

    assert ansible("manager", {"host": host, "state": "stopped"})["changed"]
    assert not manager_proc.status(host)["answers"] and leftovers(host) == []
    assert ansible("manager", {"host": host, "state": "stopped"})["changed"] is False


@pytest.mark.dataplane
def test_manager_absent_removes_what_a_killed_manager_left(host: str) -> None:
    """state=absent after kill -9: the hugepage files (pages pinned), runtime
    dir, stats area and supervision files go; check mode names them and
    touches nothing; a second run changes nothing; the pages are free again."""
    free0 = free_pages()
    pid = ansible("manager", mgr_args(host))["pid"]
    os.kill(pid, 9)
    wait_until(lambda: not os.path.exists("/proc/%d" % pid) or _zombie(pid), 10)
    left = leftovers(host)
    kinds = {p.split("/")[1] + "/" + p.split("/")[2] for p in left}
    assert {"dev/hugepages", "var/run", "dev/shm", "run/onvm"} <= kinds, left

    r = ansible("manager", {"host": host, "state": "absent"}, check=True, diff=True)
    assert r["changed"] and r["removed"] == left and r["diff"]["before"]["left"] == left
    assert leftovers(host) == left  # check mode removed nothing

    r = ansible("manager", {"host": host, "state": "absent"})
    assert r["changed"] and r["removed"] == left and leftovers(host) == []
    assert ansible("manager", {"host": host, "state": "absent"})["changed"] is False
    assert free_pages() == free0  # the pinned pages are back


def _zombie(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# --- nf, chain, onvm_info -----------------------------------------------------------------------


@pytest.mark.dataplane
def test_nf_chain_and_onvm_info_modules(host: str, docker_client: Any, installed: Path) -> None:
    assert ansible("manager", mgr_args(host))["changed"]

    def containers() -> list[str]:
        return sorted(c.name for c in nf_container.find(docker_client, host))

    names = ["onvm-%s-fwd-0" % host, "onvm-%s-fwd-1" % host]
    nf_args = dict(host=host, service="fwd", image="onvm/forward:0.1.0", instances=2)
    r = ansible("nf", nf_args, check=True, diff=True)
    assert r["changed"] and r["started"] == names
    assert r["diff"] == {"before": {"containers": []}, "after": {"containers": names}}
    assert containers() == []
    r = ansible("nf", nf_args)
    assert r["changed"] and sorted(i["container"] for i in r["instances"]) == names
    assert all(isinstance(i["instance"], int) for i in r["instances"])
    assert ansible("nf", nf_args)["changed"] is False
    assert ansible("nf", nf_args, check=True, diff=True)["changed"] is False
    r = ansible("nf", {**nf_args, "image": "example/not-here:1"})
    assert r["failed"] and r["msg"] == (
        "image: 'example/not-here:1' is not on this host (onvm images: scripts/build-artifacts.sh builds "
        "them, roles/onvm_host loads them; others: load or pull it there)"
    )
    r = ansible("nf", {**nf_args, "instances": 65})
    assert r["failed"] and r["msg"] == "instances: must be 0-64, got 65"
    assert containers() == names

    chains = {"web": {"services": ["fwd"], "match": {"proto": "udp"}, "egress": "port0"}}
    r = ansible("chain", {"host": host, "chains": chains}, check=True, diff=True)
    assert r["changed"] and r["set"] == ["web"] and r["diff"]["before"] == {}
    assert r["diff"]["after"]["web"]["services"] == ["fwd"]
    assert ansible("onvm_info", {"host": host})["chains"] == []
    r = ansible("chain", {"host": host, "chains": chains})
    assert r["changed"] and list(r["chains"]) == ["web"]
    assert ansible("chain", {"host": host, "chains": chains})["changed"] is False
    assert ansible("chain", {"host": host, "chains": chains}, check=True, diff=True)["changed"] is False
    bad = {"web": {"services": ["fwd", "nosuch"]}, "other": {"services": ["fwd"]}}
    r = ansible("chain", {"host": host, "chains": bad})
    assert r["failed"] and r["msg"] == "chain web: unknown service(s) nosuch"
    r = ansible("chain", {"host": "nobody" + host, "chains": chains})
    assert r["failed"] and r["msg"].startswith("no onvm-mgr for host 'nobody%s'" % host)

    # onvm_info: what the control socket says and the stats area holds
    info = ansible("onvm_info", {"host": host})
    assert info["changed"] is False and info["running"] is True
    assert [c["name"] for c in info["chains"]] == ["web"]  # the refused chains changed nothing
    assert sorted(n["service"] for n in info["nfs"] if n["state"] == "running") == ["fwd", "fwd"]
    st = info["stats"]
    assert st["host"] == host and st["mgr_pid"] == info["status"]["pid"]
    assert [p["name"] for p in st["ports"]] == ["net_null0"]
    assert st["pool"]["size"] > 0
    port_counters = ("rx", "tx", "rx_nombuf", "tx_drop", "no_chain", "steer_drop", "nsh_drop")
    assert all(isinstance(st["ports"][0][k], int) for k in port_counters)
    # the area lags the manager's table by up to one period
    fwd = [n for n in st["nfs"] if n["service"] == "fwd"]
    if len(fwd) < 2:
        time.sleep(0.3)
        st = ansible("onvm_info", {"host": host})["stats"]
        fwd = [n for n in st["nfs"] if n["service"] == "fwd"]
    assert sorted(n["instance"] for n in fwd) == sorted(
        n["instance"] for n in info["nfs"] if n["state"] == "running"
    )
    for n in fwd:
        assert all(isinstance(n[k], int) for k in ("rx", "tx", "dropped", "processed", "busy_cycles"))
    again = ansible("onvm_info", {"host": host}, check=True)
    assert again["changed"] is False and again["stats"]["updates"] > info["stats"]["updates"]  # live

    # a host without the installed header (hidden, in a mount namespace of its own): what is
    # missing, where the module looked, what installs it
    hidden = ("unshare", "-m", "--propagation", "private", "sh", "-c", HIDE_INCLUDE, "sh")
    r = ansible("onvm_info", {"host": host}, prefix=hidden)
    assert r["failed"] and r["msg"] == (
        "manager of %s answers but its stats area is unreadable: cannot find onvm_stats.h, the stats "
        "layout; looked at $ONVM_STATS_HEADER (unset), the module's files (AnsiballZ ships "
        "module_utils' .py files only), /usr/include/onvm/onvm_stats.h. On a host, the onvm-dataplane "
        "package installs it at /usr/include/onvm/onvm_stats.h (the role onvm_host installs the package, "
        "deploy.yml runs it); elsewhere set ONVM_STATS_HEADER to native/include/onvm/onvm_stats.h" % host
    )
    assert os.path.isfile(INSTALLED_HEADER)  # hidden from that command only

    r = ansible("onvm_info", {"host": host, "stats_file": "/etc/hostname"})
    assert r["failed"] and r["msg"] == (
        "manager of %s answers but its stats area is unreadable: "
        "/etc/hostname is smaller than the stats layout: another version?" % host
    )
    r = ansible("onvm_info", {"runtime_dir": "/var/run/dpdk"})
    assert r["failed"] and r["msg"] == "missing required arguments: host"
    assert ansible("onvm_info", {"host": "nobody" + host}) == {
        "changed": False,
        "running": False,
        "invocation": {
            "module_args": {"host": "nobody" + host, "runtime_dir": "/var/run/dpdk", "stats_file": None}
        },
    }

    r = ansible("nf", {**nf_args, "state": "absent"})
    assert r["changed"] and sorted(r["removed"]) == names and containers() == []
    assert ansible("nf", {**nf_args, "state": "absent"})["changed"] is False


@pytest.mark.dataplane
def test_a_playbook_of_the_modules(host: str, tmp_path: Path, installed: Path) -> None:
    """manager, nf, chain and onvm_info in one play, as a deploy runs them:
    the first run changes three tasks, a second none, check mode none."""
    play = tmp_path / "play.yml"
    play.write_text(
        json.dumps(
            [
                {
                    "name": "One onvm host",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {"name": "Manager", "onvm.nfv.manager": mgr_args(host)},
                        {
                            "name": "Firewall",
                            "onvm.nfv.nf": {
                                "host": host,
                                "service": "fw",
                                "image": "onvm/firewall:0.1.0",
                                "args": ["-r", "/etc/onvm/fw.rules"],
                                "files": {os.path.join(REPO, "files", "fw.rules"): "/etc/onvm/fw.rules"},
                            },
                        },
                        {
                            "name": "Chain",
                            "onvm.nfv.chain": {
                                "host": host,
                                "chains": {"web": {"services": ["fw"], "egress": "port0"}},
                            },
                        },
                        {"name": "Info", "onvm.nfv.onvm_info": {"host": host}, "register": "onvm"},
                        {
                            "name": "Check",
                            "ansible.builtin.assert": {
                                "that": [
                                    "onvm.running",
                                    "onvm.stats.host == '%s'" % host,
                                    "onvm.chains | map(attribute='name') | list == ['web']",
                                ]
                            },
                        },
                    ],
                }
            ]
        )
    )
    rc, doc = playbook(play)
    assert rc == 0, failures(doc)
    results = task_results(doc)
    assert [n for n, r in results.items() if r.get("changed")] == ["Manager", "Firewall", "Chain"]
    assert doc["stats"]["localhost"]["changed"] == 3
    assert results["Info"]["stats"]["host"] == host and results["Info"]["running"]
    for check in (False, True):
        rc, doc = playbook(play, check=check)
        assert rc == 0 and doc["stats"]["localhost"]["changed"] == 0, (failures(doc), doc["stats"])
        assert task_results(doc)["Info"]["stats"]["host"] == host


# --- scaler --------------------------------------------------------------------------------------


@pytest.mark.dataplane
def test_scaler_module(host: str, redis_server: RedisServer) -> None:
    assert ansible("manager", mgr_args(host))["changed"]
    args = dict(host=host, redis=redis_server.url, binary=SCALER)
    r = ansible("scaler", args, check=True, diff=True)
    assert r["changed"] and r["diff"]["before"]["running"] is False and r["diff"]["after"]["running"]
    assert scaler_running(host) is None

    # refused, nothing started: a Redis that is down, a bad metrics address, a bad name
    port = free_port()
    r = ansible("scaler", {**args, "redis": "redis://127.0.0.1:%d/0" % port})
    assert r["failed"]
    assert r["msg"].startswith("redis: cannot reach Redis at 127.0.0.1:%d: Connection refused" % port)
    # a check before the first deploy (Redis not started yet, no configuration written yet): said,
    # not refused, nothing started
    fresh = {**args, "redis": "redis://127.0.0.1:%d/0" % port, "config": "/nonexistent/scaler.json"}
    r = ansible("scaler", fresh, check=True)
    assert not r.get("failed") and r["changed"], r
    assert any(w.startswith("redis: cannot reach Redis at 127.0.0.1:%d" % port) for w in r["warnings"])
    assert scaler_running(host) is None
    r = ansible("scaler", {**args, "metrics": "no-port"})
    assert r["failed"] and r["msg"].startswith("metrics: ")
    r = ansible("scaler", {**args, "host": "no/slashes"})
    assert r["failed"] and r["msg"] == "host: 'no/slashes' is not a valid name (1-31 of [A-Za-z0-9_.-])"
    assert scaler_running(host) is None

    r = ansible("scaler", args)
    assert r["changed"] and r["pid"] and scaler_running(host) == r["pid"]
    pid = r["pid"]
    # the agent started through ansible reads this host's stats area and heartbeats into the view
    client = redis_server.client()
    assert wait_until(lambda: host in global_view.view(client)["hosts"], 20)
    assert ansible("scaler", args)["changed"] is False
    assert ansible("scaler", args, check=True, diff=True)["changed"] is False
    r = ansible("scaler", {**args, "redis": "redis://127.0.0.1:%d/0" % port})
    assert r["failed"] and scaler_running(host) == pid  # the running agent was left alone

    assert ansible("scaler", {"host": host, "state": "stopped"})["changed"]
    assert scaler_running(host) is None
    assert ansible("scaler", {"host": host, "state": "stopped"})["changed"] is False


# --- hugepages -----------------------------------------------------------------------------------


def test_hugepages_module_on_a_fake_pool(tmp_path: Path) -> None:
    tree = FakeTree(tmp_path)
    pool = tree.add_pool("2M", nr=0)
    mnt = str(tmp_path / "hugepages")
    tree.set_mounts("nodev %s hugetlbfs rw,relatime,pagesize=2M 0 0\n" % mnt)
    roots = dict(sysfs_root=str(tree.sys), procfs_root=str(tree.proc), etc_root=str(tree.etc), mount=mnt)
    sysctl = tree.etc / "sysctl.d" / "80-onvm-hugepages.conf"

    def state() -> tuple[str, bool, bool]:
        return (pool / "nr_hugepages").read_text(), sysctl.exists(), (tree.etc / "fstab").exists()

    r = ansible("hugepages", dict(count=4, **roots), check=True, diff=True)
    assert r["changed"] and (r["count_before"], r["count_after"]) == (0, 4)
    assert r["diff"][0]["before"] == "0\n" and r["diff"][0]["after"] == "4\n"
    assert "vm.nr_hugepages = 4" in r["diff"][2]["after"]
    assert state() == ("0\n", False, False)

    r = ansible("hugepages", dict(count=4, **roots))
    assert r["changed"] and r["count_after"] == 4 and r["persisted"]
    assert state() == ("4\n", True, True) and "vm.nr_hugepages = 4\n" in sysctl.read_text()
    assert ansible("hugepages", dict(count=4, **roots))["changed"] is False
    assert ansible("hugepages", dict(count=4, **roots), check=True, diff=True)["changed"] is False

    for count, msg in (
        (-1, "count=-1: the number of pages must be 0 or more"),
        (5000, "count=5000: 5000 2M pages are 10000 MiB, more than this machine's memory (7812 MiB)"),
    ):
        r = ansible("hugepages", dict(count=count, **roots))
        assert r["failed"] and r["msg"] == msg
    r = ansible("hugepages", dict(count=4, size="1G", **roots))
    assert r["failed"] and r["msg"] == "size=1G: this kernel has no 1G hugepages (it has: 2M)"
    assert state() == ("4\n", True, True)


@pytest.mark.dataplane
def test_hugepages_module_on_this_machine_checks_and_refuses_only(tmp_path: Path) -> None:
    """The machine's pool must keep its pages: check mode, and a count the
    module refuses before it writes anything."""
    before = read_pool("/sys", "2M")
    args = dict(count=before.nr, mount="/dev/hugepages", persist=False)
    r = ansible("hugepages", args, check=True, diff=True)
    assert r["changed"] is False and r["count_before"] == before.nr and r["mount"] == "/dev/hugepages"
    # more pages, kept across reboots (in a /etc of the test's own): the diff, nothing done
    etc = tmp_path / "etc"
    r = ansible(
        "hugepages",
        {**args, "count": before.nr + 2, "persist": True, "etc_root": str(etc)},
        check=True,
        diff=True,
    )
    assert r["changed"] and (r["count_before"], r["count_after"]) == (before.nr, before.nr + 2)
    assert r["diff"][0]["after"] == "%d\n" % (before.nr + 2)
    assert not etc.exists()
    r = ansible("hugepages", {**args, "count": -1})
    assert r["failed"] and r["msg"] == "count=-1: the number of pages must be 0 or more"
    assert read_pool("/sys", "2M").nr >= before.nr


# --- dpdk_bind ----------------------------------------------------------------------------------

FREE_NIC = "0000:00:04.0"  # virtio, its interface down, no address, no route
HOST_NIC = "0000:00:03.0"  # virtio, eth0: up, the default route


class FifoKernel:
    """The PCI core of a fake sysfs tree, for a module in another process.

    The attributes dpdk_bind writes (unbind, bind, drivers_probe) are FIFOs
    that a thread reads in the order the module writes them; after each it
    moves the device's driver link as the kernel would, before it opens the
    next FIFO, so the module (whose open() of that FIFO waits for it) finds
    the link moved when it looks. A write out of that order blocks the module
    until the test gives up on it: nothing unexpected goes unnoticed."""

    def __init__(self, tree: FakeTree, addr: str, steps: list[tuple[str, str | None]]) -> None:
        self.tree = tree
        self.addr = addr
        self.writes: list[tuple[str, str]] = []
        self.steps = [(tree.sys / "bus" / "pci" / rel, then) for rel, then in steps]
        for path in {p for p, _then in self.steps}:
            path.unlink(missing_ok=True)
            os.mkfifo(path)
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def driver(self) -> str | None:
        link = self.tree.device_path(self.addr) / "driver"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def _serve(self) -> None:
        for path, then in self.steps:
            with open(path) as f:  # returns once dpdk_bind opens it to write
                value = f.read()
            if self._closing:
                return
            self.writes.append((str(path.relative_to(self.tree.sys / "bus" / "pci")), value))
            if then is not None:
                link = self.tree.device_path(self.addr) / "driver"
                link.unlink(missing_ok=True)
                link.symlink_to(
                    os.path.relpath(self.tree.sys / "bus" / "pci" / "drivers" / then, link.parent)
                )

    def close(self) -> None:
        self._closing = True
        for path in {p for p, _then in self.steps}:
            for flags in (os.O_WRONLY, os.O_RDONLY):  # wake a waiting reader (the thread) or writer
                try:
                    os.close(os.open(path, flags | os.O_NONBLOCK))
                except OSError:
                    pass
        self._thread.join(5)


@pytest.fixture
def pci_lab(tmp_path: Path) -> Iterator[tuple[FakeTree, FifoKernel]]:
    tree = FakeTree(tmp_path)
    tree.add_driver("vfio-pci")
    tree.add_device(HOST_NIC, driver="virtio-pci", iface="eth0", virtio=True, operstate="up")
    tree.add_route("eth0")
    tree.add_device(FREE_NIC, driver="virtio-pci", iface="onvmfake4", virtio=True, iommu_group=7)
    kernel = FifoKernel(
        tree,
        FREE_NIC,
        [
            ("drivers/virtio-pci/unbind", "vfio-pci"),  # then vfio-pci's bind takes it
            ("drivers/vfio-pci/bind", None),
            ("drivers/vfio-pci/unbind", "virtio-pci"),  # then the probe gives it to virtio-pci
            ("drivers_probe", None),
        ],
    )
    try:
        yield tree, kernel
    finally:
        kernel.close()


def test_dpdk_bind_module_on_a_fake_sysfs(pci_lab: tuple[FakeTree, FifoKernel], built: None) -> None:
    tree, kernel = pci_lab
    roots = dict(sysfs_root=str(tree.sys), procfs_root=str(tree.proc), onvm_own=binary("onvm-own"))
    override = tree.device_path(FREE_NIC) / "driver_override"
    bind = dict(device=FREE_NIC, driver="vfio-pci", **roots)

    r = ansible("dpdk_bind", bind, check=True, diff=True)
    assert r["changed"] and (r["driver_before"], r["driver"]) == ("virtio-pci", "vfio-pci")
    assert (r["diff"]["before"], r["diff"]["after"]) == ("driver: virtio-pci\n", "driver: vfio-pci\n")
    assert kernel.writes == [] and kernel.driver() == "virtio-pci"

    r = ansible("dpdk_bind", bind)
    assert r["changed"] and r["driver"] == "vfio-pci" and r["interfaces"] == ["onvmfake4"]
    assert r["iommu_group"] == 7
    assert kernel.writes == [("drivers/virtio-pci/unbind", FREE_NIC), ("drivers/vfio-pci/bind", FREE_NIC)]
    assert kernel.driver() == "vfio-pci" and override.read_text() == "\n"  # the override cleared again
    assert ansible("dpdk_bind", bind)["changed"] is False
    # the short form of the same address is the same device
    assert ansible("dpdk_bind", {**bind, "device": "00:04.0"}, check=True)["changed"] is False

    unbind = dict(device=FREE_NIC, state="unbound", **roots)
    r = ansible("dpdk_bind", unbind, check=True, diff=True)
    assert r["changed"] and r["diff"]["after"] == "driver: (the kernel's)\n"
    assert len(kernel.writes) == 2 and kernel.driver() == "vfio-pci"
    r = ansible("dpdk_bind", unbind)
    assert r["changed"] and r["driver"] == "virtio-pci" and kernel.driver() == "virtio-pci"
    assert kernel.writes[2:] == [("drivers/vfio-pci/unbind", FREE_NIC), ("drivers_probe", FREE_NIC)]
    assert ansible("dpdk_bind", unbind)["changed"] is False

    # refused, nothing written (a write would wait on its FIFO)
    r = ansible("dpdk_bind", {**bind, "device": HOST_NIC})
    assert r["failed"] and r["msg"].startswith(
        "refusing PCI device %s: it backs interface 'eth0' and it is up; it carries routes (default)"
        % HOST_NIC
    )
    r = ansible("dpdk_bind", {**bind, "device": "0000:00:1f.7"})
    assert r["failed"] and r["msg"] == "device=0000:00:1f.7: no such PCI device (no %s)" % (
        tree.sys / "bus" / "pci" / "devices" / "0000:00:1f.7"
    )
    r = ansible("dpdk_bind", {**bind, "device": "eth0"})
    assert r["failed"] and r["msg"].startswith("device='eth0' is not a PCI address")
    r = ansible("dpdk_bind", {**bind, "driver": "e1000"})
    assert r["failed"] and r["msg"].startswith("value of driver must be one of: vfio-pci, uio_pci_generic")
    assert len(kernel.writes) == 4 and kernel.driver() == "virtio-pci"


@pytest.mark.skipif(eth0_pci_address() is None, reason="eth0 has no PCI device on this machine")
def test_dpdk_bind_module_refuses_this_machines_nic(built: None) -> None:
    """In check mode only (a refusal comes before any write, but this is the
    machine's only way out)."""
    addr = eth0_pci_address()
    assert addr is not None
    driver = os.path.basename(os.readlink("/sys/bus/pci/devices/%s/driver" % addr))
    for drv in ("vfio-pci", "uio_pci_generic"):
        args = {"device": addr, "driver": drv, "onvm_own": binary("onvm-own")}
        r = ansible("dpdk_bind", args, check=True, diff=True)
        assert r["failed"] and r["msg"].startswith("refusing PCI device %s: it backs interface 'eth0'" % addr)
    r = ansible("dpdk_bind", {"device": "0000:7f:1f.7", "driver": "vfio-pci", "onvm_own": binary("onvm-own")})
    assert (
        r["failed"]
        and r["msg"] == "device=0000:7f:1f.7: no such PCI device (no /sys/bus/pci/devices/0000:7f:1f.7)"
    )
    assert os.path.basename(os.readlink("/sys/bus/pci/devices/%s/driver" % addr)) == driver
