#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: manager
short_description: Start, stop or restart the onvm manager (onvm-mgr) of a host
version_added: "0.1.0"
description:
  - Runs C(onvm-mgr), the per-host DPDK primary of openNetVM, with its cores, memory, ports and file prefix
    C(onvm-<host>).
  - Where systemd is PID 1 the manager runs as the unit C(onvm-mgr-<host>.service); elsewhere it is started
    detached with a pid file and a state file under C(/run/onvm) recording its configuration.
  - With O(state=started), a manager already running with the same configuration is left alone (no change);
    a changed configuration restarts it.
  - The manager itself refuses ports that are the machine's own (an interface that is up or routed, such as
    eth0, or its PCI device); the module reports its message.
  - A running manager is never stopped for a configuration that would not start. Before replacing it (and in
    check mode) the module runs C(onvm-mgr --check) with the new configuration, which checks the arguments,
    that every port exists, is not the machine's own and has a driver, that the core exists, and that enough
    hugepages are free (counting those the running manager holds); on a refusal the module fails and the
    running manager, its NFs and chains are untouched.
  - If a new manager still fails to start, the previous configuration is started again and the module fails
    with both the reason and "rolled back"; the host's NFs and chains come back with the next run of the
    roles that deploy them.
  - A change that only appends vdev ports (C(net_af_packet...), C(net_memif...), ...) to the ports of a
    running detached manager adds them to it without a restart (its control command C(port_add)); traffic on
    the other ports goes on and the NFs keep running; RV(added_ports) lists them. If the manager cannot add
    one, it is restarted with the new configuration instead (RV(warning) says why).
  - Any other change of the manager's configuration (memory, mbufs, core, a port removed, reordered or a PCI
    device added, or any change under systemd) restarts it; the host's NFs stop with it and traffic stops
    until they are started again. RV(restart) and the diff say which it is.
  - O(state=absent) stops the manager and removes what a manager of the host left behind if it did not exit
    cleanly (killed, or its machine's processes ended) - its hugepage files, which keep their pages pinned,
    its runtime dir and control socket, its stats area and its supervision files (RV(removed)). Undeploy,
    the lab's teardown and the tests use it; nothing else keeps a list of those files.
extends_documentation_fragment:
  - onvm.nfv.onvm
  - onvm.nfv.onvm.runtime_dir
  - onvm.nfv.attributes
  - onvm.nfv.attributes.actiongroup_onvm
attributes:
  check_mode:
    support: full
    details:
      - The new configuration of a running manager is checked (C(onvm-mgr --check)) and refused in check
        mode as in a real run; under systemd (O(supervisor=systemd), or O(supervisor=auto) where systemd is
        PID 1) a new unit text is the change, checked the same way before the unit is rewritten and restarted.
  diff_mode:
    support: full
    details:
      - The diff shows whether the manager runs and its configuration, before and after.
  idempotent:
    support: partial
    details:
      - O(state=restarted) restarts the manager, and reports a change, on every run.
options:
  state:
    description:
      - Whether the manager should run; V(absent) also removes what a manager that did not exit cleanly left.
    type: str
    choices: [started, stopped, restarted, absent]
    default: started
  binary:
    description:
      - Path of the C(onvm-mgr) binary (the onvm-dataplane package installs it there).
      - Its content counts as configuration - a new build installed at the same path restarts the manager.
    type: path
    default: /usr/bin/onvm-mgr
  ports:
    description:
      - Ports the manager takes, in order (port0, port1, ...).
      - A PCI address (C(0000:03:00.0)) or a DPDK vdev (C(net_af_packet0,iface=veth0,framecnt=8192)).
    type: list
    elements: str
    default: []
  pending_ports:
    description:
      - Ports of O(ports) whose devices the same run creates before this task runs for real (the lab's veth
        ports); in check mode they count in the result and the diff but are left out of C(onvm-mgr --check),
        which would not find them yet.
    type: list
    elements: str
    default: []
  core:
    description: CPU of the manager's data lcore.
    type: int
    default: 0
  mem_mb:
    description: Hugepage memory the manager takes, in MiB.
    type: int
    default: 64
  mbufs:
    description: Number of mbufs in the packet pool.
    type: int
    default: 8191
  flow_idle:
    description: Seconds after which an idle flow is forgotten.
    type: int
    default: 10
  huge_dir:
    description: hugetlbfs mount to use; the system's when unset.
    type: path
  extra_eal:
    description: Extra EAL arguments, appended after C(--).
    type: list
    elements: str
    default: []
  supervisor:
    description: How the manager is kept running; C(auto) picks systemd where it is PID 1.
    type: str
    choices: [auto, systemd, detached]
    default: auto
  timeout:
    description: Seconds to wait for the manager to answer on its control socket.
    type: int
    default: 60
author:
  - onvm engineers (@onvm)
"""

EXAMPLES = r"""
- name: Run the manager of this host with two af_packet lab ports
  onvm.nfv.manager:
    host: lab1
    ports:
      - net_af_packet0,iface=ovlab10,framecnt=8192
      - net_af_packet1,iface=ovlab11,framecnt=8192
    mem_mb: 64

- name: Stop it
  onvm.nfv.manager:
    host: lab1
    state: stopped

- name: No manager, and nothing a killed one left (hugepage files, runtime dir, stats area)
  onvm.nfv.manager:
    host: lab1
    state: absent
"""

RETURN = r"""
pid:
  description: Process id of the running manager (null when stopped).
  returned: always
  type: int
  sample: 4242
argv:
  description: Command line the manager runs with.
  returned: always
  type: list
  elements: str
  sample: ["/usr/bin/onvm-mgr", "--host", "lab1", "--core", "0"]
supervisor:
  description: C(systemd) or C(detached).
  returned: always
  type: str
  sample: detached
restart:
  description: Whether the change restarts (restarted) a running manager.
  returned: always
  type: bool
  sample: false
added_ports:
  description: Ports added to the running manager without a restart.
  returned: always
  type: list
  elements: str
  sample: ["net_af_packet2,iface=ovlab12,framecnt=8192"]
warning:
  description: Why ports could not be added live and the manager was restarted instead.
  returned: when that happened
  type: str
removed:
  description: What a manager of the host had left and was removed (with O(state=absent)).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: ["/dev/hugepages/onvm-lab1map_0", "/dev/shm/onvm-lab1.stats", "/var/run/dpdk/onvm-lab1"]
"""

from dataclasses import replace
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onvm.nfv.plugins.module_utils import names, units
from ansible_collections.onvm.nfv.plugins.module_utils.manager_proc import (
    ManagerConfig,
    ManagerError,
    add_ports,
    added_ports,
    install_unit,
    recorded_config,
    remove_leftovers,
    start,
    status,
    stop,
    systemctl,
    systemd_is_init,
    unit_name,
    unit_text,
    validate,
)
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import name_ok
from ansible_collections.onvm.nfv.plugins.module_utils.supervise import file_digest


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            state=dict(type="str", choices=["started", "stopped", "restarted", "absent"], default="started"),
            binary=dict(type="path", default="/usr/bin/onvm-mgr"),
            ports=dict(type="list", elements="str", default=[]),
            pending_ports=dict(type="list", elements="str", default=[]),
            core=dict(type="int", default=0),
            mem_mb=dict(type="int", default=64),
            mbufs=dict(type="int", default=8191),
            flow_idle=dict(type="int", default=10),
            runtime_dir=dict(type="path", default="/var/run/dpdk"),
            huge_dir=dict(type="path"),
            extra_eal=dict(type="list", elements="str", default=[]),
            supervisor=dict(type="str", choices=["auto", "systemd", "detached"], default="auto"),
            timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not name_ok(p["host"]):
        module.fail_json(msg="host: '%s' is not a valid name (1-31 of [A-Za-z0-9_.-])" % p["host"])
    for key, low in (("core", 0), ("mem_mb", 16), ("mbufs", 1023), ("flow_idle", 1), ("timeout", 1)):
        if p[key] < low:
            module.fail_json(msg="%s: must be at least %d, got %d" % (key, low, p[key]))
    cfg = ManagerConfig(
        host=p["host"],
        binary=p["binary"],
        ports=p["ports"],
        core=p["core"],
        mem_mb=p["mem_mb"],
        mbufs=p["mbufs"],
        flow_idle=p["flow_idle"],
        runtime_dir=p["runtime_dir"],
        huge_dir=p["huge_dir"],
        extra_eal=p["extra_eal"],
        binary_digest=file_digest(p["binary"]),
    )
    use_systemd = p["supervisor"] == "systemd" or (p["supervisor"] == "auto" and systemd_is_init())
    if p["state"] == "absent":
        _absent(module, cfg, use_systemd)
    now = status(cfg.host, cfg.runtime_dir)
    same = bool(now["config"]) and now["config"].get("fingerprint") == cfg.fingerprint()
    if p["state"] == "stopped":
        changed = now["answers"]
    elif p["state"] == "started" and use_systemd:
        # the unit file says what runs: a new text is a restart (checked first, below)
        changed = not now["running"] or units.current_text(unit_name(cfg.host)) != unit_text(cfg)
    elif p["state"] == "started":
        changed = not (now["running"] and same)
    else:
        changed = True
    # only vdev ports appended to a running detached manager: added live
    added = (
        added_ports(recorded_config(cfg.host), cfg)
        if changed and now["running"] and p["state"] == "started" and not use_systemd
        else []
    )
    restart = changed and now["running"] and p["state"] != "stopped" and not added
    before = {"running": now["running"], "config": (now["config"] or {}).get("config")}
    after = {
        "running": p["state"] != "stopped",
        "config": None if p["state"] == "stopped" else vars(cfg),
        "restart": restart,
        "added_ports": added,
    }
    result = dict(
        changed=changed,
        argv=cfg.argv(),
        supervisor="systemd" if use_systemd else "detached",
        pid=now["pid"],
        restart=restart,
        added_ports=added,
        diff=dict(before=before, after=after if changed else before),
    )
    unchanged = {k: v for k, v in result.items() if k not in ("changed", "diff", "restart", "added_ports")}
    # A running manager is never stopped for a configuration that would not
    # start: the new one is checked first (in check mode too).
    if changed and now["running"] and p["state"] != "stopped":
        why = validate(replace(cfg, ports=[x for x in cfg.ports if x not in p["pending_ports"]]))
        if why is not None:
            module.fail_json(
                msg="refused: the new configuration would not start, the running manager (pid %s) "
                "was not touched: %s" % (now["pid"], why),
                **unchanged,
            )
    if module.check_mode:
        module.exit_json(**result)
    try:
        if use_systemd:
            result["changed"] = _systemd(cfg, p["state"], now["running"]) or changed
        elif added:
            try:
                add_ports(cfg, added, now["pid"])
            except ManagerError as e:
                # (a vdev the NFs could not attach, say): the restart it would have been
                result.update(restart=True, added_ports=[], warning="%s; restarted instead" % e)
                _replace(cfg, p["state"], now["answers"], p["timeout"])
        elif changed:
            _replace(cfg, p["state"], now["answers"], p["timeout"])
    except (ManagerError, OSError) as e:
        module.fail_json(msg=str(e), **unchanged)
    result["pid"] = status(cfg.host, cfg.runtime_dir)["pid"]
    module.exit_json(**result)


def _absent(module: AnsibleModule, cfg: ManagerConfig, use_systemd: bool) -> None:
    """No manager of the host, and none of the files one leaves."""
    huge_dir = cfg.huge_dir or names.HUGE_DIR
    now = status(cfg.host, cfg.runtime_dir)
    left = names.leftovers(cfg.host, cfg.runtime_dir, huge_dir)
    running = bool(now["running"])
    result: dict[str, Any] = dict(
        changed=running or bool(left),
        argv=cfg.argv(),
        supervisor="systemd" if use_systemd else "detached",
        pid=None,
        restart=False,
        added_ports=[],
        removed=left,
        diff=dict(before={"running": running, "left": left}, after={"running": False, "left": []}),
    )
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)
    try:
        if use_systemd:
            _systemd(cfg, "stopped", running)
        stop(cfg.host, cfg.runtime_dir)
        # what is still there once it is gone (stopping removes its
        # supervision files, a clean exit most of the rest)
        remove_leftovers(cfg.host, cfg.runtime_dir, huge_dir)
    except (ManagerError, OSError) as e:
        module.fail_json(msg="state=absent: %s" % e, **{k: v for k, v in result.items() if k != "diff"})
    module.exit_json(**result)


def _replace(cfg: ManagerConfig, state: str, running: bool, timeout: int) -> None:
    """Stop what runs and start ``cfg``; if the new manager still does not
    start, start the previous configuration again and say so."""
    previous = recorded_config(cfg.host) if running else None
    if running:
        stop(cfg.host, cfg.runtime_dir)
    if state == "stopped":
        return
    try:
        start(cfg, timeout=timeout)
    except ManagerError as e:
        if previous is None:
            raise
        try:
            pid = start(previous, timeout=timeout)
        except ManagerError as again:
            raise ManagerError(
                "%s; rolling back to the previous configuration failed too: %s" % (e, again)
            ) from again
        raise ManagerError(
            "%s; rolled back: the previous configuration runs again (pid %d); its NFs and chains come "
            "back with the next deploy run" % (e, pid)
        ) from e


def _systemd(cfg: ManagerConfig, state: str, running: bool) -> bool:
    if state == "stopped":
        if running:
            systemctl("stop", cfg.host)
        return running
    unit_changed = install_unit(cfg)
    if state == "restarted" or unit_changed or not running:
        systemctl("enable", cfg.host)
        systemctl("restart", cfg.host)
        return True
    return False


if __name__ == "__main__":
    main()
