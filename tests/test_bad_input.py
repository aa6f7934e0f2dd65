"""Bad input gets a clear error, exit status 2, and leaves nothing behind
(no runtime dir, no hugepage files, no stats file, machine network as it
was)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlError
from onvm.lab.hugepages import free_pages
from onvm.lab.manager import ManagerProcess, binary, leftovers
from onvm.lab.netns import lab_ports
from onvm.lab.single_host import nf_spec


def machine_net() -> str:
    """What must never change: eth0's addresses and state, and the routes."""
    return (
        subprocess.run(["ip", "-br", "addr", "show", "eth0"], capture_output=True, text=True).stdout
        + subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    )


def run_mgr(host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("onvm-mgr"), "--host", host, *args], capture_output=True, text=True, timeout=60
    )


def eth0_pci() -> str | None:
    """PCI address of the device behind eth0 (through virtioN if virtio)."""
    path = os.path.realpath("/sys/class/net/eth0/device")
    while path != "/":
        name = os.path.basename(path)
        if name.count(":") == 2 and "." in name:
            return name
        path = os.path.dirname(path)
    return None


@pytest.mark.dataplane
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mem", "1000000"], "not enough hugepages"),
        (["--port", "net_af_packet0,iface=onvm-no-such-if"], "does not exist"),
        (["--port", "0000:ff:1f.7"], "unknown PCI device"),
        (["--port", "eth0"], "unknown port"),
        (["--port", "net_nosuchdriver0"], "no DPDK vdev driver 'net_nosuchdriver'"),
        (["--port", "net_af_packet0,iface=eth0"], "refusing interface 'eth0'"),
        (["--port", "net_af_packet0,iface=lo"], "refusing interface 'lo'"),
        (["--core", "9999"], "bad --core"),
        (["--core", str(os.cpu_count() or 1)], "no such cpu on this machine"),
        (["--mbufs", "12"], "bad --mbufs"),
    ],
)
@pytest.mark.parametrize("check", [False, True], ids=["start", "check"])
def test_manager_refuses_bad_input_and_leaves_nothing(
    tag: str, hugepages: int, built: None, args: list[str], message: str, check: bool
) -> None:
    """Started or only checked (--check, what the manager module asks
    before it replaces a running manager), the same refusal."""
    host = "t" + tag
    before_net, before_pages = machine_net(), free_pages()
    proc = run_mgr(host, *args, *(["--check"] if check else []))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert leftovers(host) == []
    assert machine_net() == before_net
    assert free_pages() == before_pages


@pytest.mark.dataplane
def test_manager_refuses_the_pci_device_behind_eth0(tag: str, built: None) -> None:
    pci = eth0_pci()
    if pci is None:
        pytest.skip("eth0 is not a PCI device here")
    before = machine_net()
    proc = run_mgr("t" + tag, "--port", pci)
    assert proc.returncode == 2
    assert "refusing PCI device %s" % pci in proc.stderr
    assert "eth0" in proc.stderr
    assert machine_net() == before
    assert leftovers("t" + tag) == []


@pytest.mark.dataplane
def test_the_manager_and_onvm_own_apply_one_rule(tag: str, hugepages: int, built: None) -> None:
    """onvm-mgr refuses a port with the very words onvm-own (and so the
    dpdk_bind module) gives, and takes the port once the reason is gone: an
    interface with an address in the lab's range is not exempt."""
    host, ns = "t" + tag, "onvmown" + tag
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        in_ns = ["ip", "netns", "exec", ns]
        subprocess.run([*in_ns, "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"], check=True)
        subprocess.run([*in_ns, "ip", "link", "set", "v0", "up"], check=True)
        subprocess.run([*in_ns, "ip", "addr", "add", "198.18.250.1/24", "dev", "v0"], check=True)
        cases = [
            ([], "net_af_packet0,iface=eth0"),
            ([], "net_af_packet0,iface=lo"),
            (in_ns, "net_af_packet0,iface=v0"),
            *([([], pci)] if (pci := eth0_pci()) is not None else []),
        ]
        before = machine_net()
        said: dict[str, str] = {}
        for prefix, spec in cases:
            own = subprocess.run([*prefix, binary("onvm-own"), spec], capture_output=True, text=True)
            assert own.returncode == 1 and own.stdout.startswith("refusing "), (spec, own)
            mgr = subprocess.run(
                [*prefix, binary("onvm-mgr"), "--host", host, "--check", "--port", spec],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert mgr.returncode == 2 and own.stdout.strip() in mgr.stderr, (spec, mgr.stderr)
            said[spec] = own.stdout
        assert "it has addresses (198.18.250.1)" in said["net_af_packet0,iface=v0"]
        subprocess.run([*in_ns, "ip", "addr", "flush", "dev", "v0", "scope", "global"], check=True)
        spec = "net_af_packet0,iface=v0"
        own = subprocess.run([*in_ns, binary("onvm-own"), spec], capture_output=True, text=True)
        assert (own.returncode, own.stdout) == (0, "")
        mgr = subprocess.run(
            [*in_ns, binary("onvm-mgr"), "--host", host, "--check", "--port", spec],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert mgr.returncode == 0, mgr.stderr
        assert machine_net() == before
        assert leftovers(host) == []
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.dataplane
def test_second_manager_for_the_same_host_is_refused(managers: Callable[..., ManagerProcess]) -> None:
    mgr = managers()
    proc = run_mgr(mgr.host)
    assert proc.returncode == 2
    assert "already running" in proc.stderr
    assert mgr.call("status")["pid"] == mgr.pid


@pytest.mark.dataplane
def test_control_socket_refuses_malformed_messages(managers: Callable[..., ManagerProcess]) -> None:
    mgr = managers()
    st = os.stat(mgr.ctl().path)
    assert st.st_mode & 0o777 == 0o600
    with mgr.ctl() as c:
        assert "malformed JSON" in c.send_raw(b"this is not json")["error"]
        assert "malformed JSON" in c.send_raw(b'{"cmd": "status"')["error"]
        assert "'cmd'" in c.send_raw(b"[1, 2, 3]")["error"]
        assert "unknown cmd 'explode'" in c.send_raw(b'{"cmd": "explode"}')["error"]
        assert "register" in c.send_raw(b'{"cmd": "register"}')["error"]
        assert c.call("status")["host"] == mgr.host  # same connection still served
    with mgr.ctl() as c:
        reply = c.send_raw(b"{" + b" " * 70_000 + b"}")
        assert "longer than" in reply["error"]
        with pytest.raises(CtlError):
            c.call("status")  # ... and that one was closed
    assert mgr.call("status")["nfs"] == 0


@pytest.mark.dataplane
def test_chain_with_unknown_service_or_port_is_refused(
    managers: Callable[..., ManagerProcess], docker_client: Any
) -> None:
    mgr = managers()
    nf_container.start(docker_client, nf_spec(mgr.host, "bounce"))
    mgr.call("chain_set", name="ok", services=["bounce"])
    before = mgr.call("chain_list")["chains"]
    bad: list[tuple[dict[str, Any], str]] = [
        ({"name": "web", "services": ["bounce", "nosuch"]}, "unknown service 'nosuch'"),
        ({"name": "web", "services": []}, "'services' must be a list"),
        ({"name": "web", "services": ["bounce"], "egress": "port7"}, "unknown egress port"),
        ({"name": "web", "services": ["bounce"], "match": {"dst_port": 70000}}, "1-65535"),
        ({"name": "web", "services": ["bounce"], "match": {"colour": "red"}}, "unknown key 'colour'"),
        ({"name": "bad name!", "services": ["bounce"]}, "'name' must be"),
        ({"name": "ok", "services": ["nosuch"]}, "unknown service"),
    ]
    for args, message in bad:
        with pytest.raises(CtlError, match=message):
            mgr.call("chain_set", **args)
    assert mgr.call("chain_list")["chains"] == before


@pytest.mark.dataplane
def test_nf_without_a_manager_says_so_and_leaves_nothing(tag: str, docker_client: Any) -> None:
    host = "t" + tag
    proc = subprocess.run([binary("bounce"), "--host", host], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "no onvm-mgr running for host '%s'" % host in proc.stderr
    with pytest.raises(nf_container.NFError, match="no onvm-mgr for host"):
        nf_container.start(docker_client, nf_spec(host, "bounce"))
    assert nf_container.find(docker_client, host) == []
    assert leftovers(host) == []


@pytest.mark.dataplane
def test_nf_with_bad_rules_fails_and_is_removed(
    managers: Callable[..., ManagerProcess], docker_client: Any, tmp_path: Any
) -> None:
    """The NF never became an instance: it registers only once set up, so
    the manager's service table (a registration adds its service) has no
    firewall.  Registering first and reading the rules after left a window
    in which start() saw it running and returned (CI: DID NOT RAISE).  Its
    exit is seen as one although Docker's restart policy says Running
    (restarting) meanwhile, not after start()'s 30 s timeout."""
    mgr = managers()
    rules = tmp_path / "fw.rules"
    rules.write_text("default allow\ndeny proto udp dport 70000\n")
    with pytest.raises(nf_container.NFError, match=r"exited with 2: .*line 2: bad rule"):
        nf_container.start(
            docker_client, nf_spec(mgr.host, "firewall", files={str(rules): "/etc/onvm/fw.rules"})
        )
    assert nf_container.find(docker_client, mgr.host) == []
    assert [s["name"] for s in mgr.call("service_list")["services"]] == []
    assert "exited" not in mgr.log()


@pytest.mark.dataplane
def test_af_packet_ports_are_lab_veths_only(tag: str, managers: Callable[..., ManagerProcess]) -> None:
    """A veth with no address is accepted (the positive case of the rule)."""
    with lab_ports(tag, 1) as (port,):
        mgr = managers([port.vdev(0)])
        assert [p["name"] for p in mgr.call("status")["ports"]] == ["net_af_packet0"]


@pytest.mark.dataplane
def test_a_port_added_while_running_is_checked_like_one_at_start(
    tag: str, managers: Callable[..., ManagerProcess], docker_client: Any
) -> None:
    """``port_add`` refuses what ``--port`` refuses, changing nothing; a lab
    veth is added beside a running NF (a secondary: it attaches the new
    device too), becomes port1, and an NF started afterwards registers."""
    with lab_ports(tag, 2) as (first, second):
        mgr = managers([first.vdev(0)])
        nf_container.start(docker_client, nf_spec(mgr.host, "bounce"))
        nfs = [(n["service"], n["pid"]) for n in mgr.call("nf_list")["nfs"]]
        bad = [
            ("net_af_packet1,iface=eth0", "refusing interface 'eth0'"),
            ("net_nosuch1", "no DPDK vdev driver 'net_nosuch'"),
            (first.vdev(0), "port0 is already net_af_packet0"),
            ("0000:03:00.0", "added with a manager restart"),
            ("", "'port' must be"),
        ]
        for spec, message in bad:
            with pytest.raises(CtlError, match=message):
                mgr.call("port_add", port=spec)
        assert [p["name"] for p in mgr.call("status")["ports"]] == ["net_af_packet0"]

        added = mgr.call("port_add", port=second.vdev(1))
        assert (added["index"], added["port"], added["device"]) == (1, "port1", "net_af_packet1")
        assert [p["name"] for p in mgr.call("status")["ports"]] == ["net_af_packet0", "net_af_packet1"]
        assert [(n["service"], n["pid"]) for n in mgr.call("nf_list")["nfs"]] == nfs
        mgr.call("chain_set", name="out", services=["bounce"], egress="port1")
        nf_container.start(docker_client, nf_spec(mgr.host, "forward"))
        assert sorted(n["service"] for n in mgr.call("nf_list")["nfs"]) == ["bounce", "forward"]
