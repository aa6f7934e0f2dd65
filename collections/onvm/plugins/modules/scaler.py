#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: scaler
short_description: Run the onvm-scaler agent of a host (global view in Redis)
version_added: "0.1.0"
description:
  - Starts C(onvm-scaler) for a host, detached with a pid file and a state file under C(/run/onvm);
    it reads the host's stats area and keeps the host's part of the global view in Redis current
    (heartbeat, instances, rates).
  - Idempotent; a changed configuration restarts it.
  - Before starting it, checks that the Redis of O(redis) answers PING (with the password of
    O(redis_password_file)) and fails with what is wrong (down, wants a password, refused it) otherwise.
extends_documentation_fragment:
  - onvm.nfv.onvm
  - onvm.nfv.attributes
attributes:
  check_mode:
    support: partial
    details:
      - The O(config) file is compared as it is on the host - a new one that an earlier task of the same
        check-mode run would write is not foreseen; a O(config) that does not exist yet (a check before the
        first deploy) counts as a change.
      - In check mode a Redis that does not answer is a warning, not a failure (the play may be about to
        start it).
      - A O(redis_password_file) that does not exist yet counts as a change, and Redis is then not checked
        (a real run checks it).
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  redis:
    description:
      - Redis URL of the global view, C(redis://HOST:PORT/DB).
      - A replicated one (three or more hosts in the group C(onvm_state)) is named by its sentinels,
        C(redis+sentinel://HOST:PORT[,HOST:PORT...]/NAME[/DB]); the agent finds the primary through them,
        after a failover too.
    type: str
    default: redis://127.0.0.1:6379/0
  redis_password_file:
    description:
      - File holding the Redis password (C(requirepass)); the role C(onvm_state) makes one on the control node
        and C(onvm_scaler) copies it to each host, readable by root only. Omitted, no password is sent.
    type: path
  binary:
    description: Path of the C(onvm-scaler) program; required with O(state=started).
    type: path
  build_id:
    description:
      - What the installed program is (the role gives its wheel's checksum). A change restarts the agent, so
        a new release runs once it is installed.
    type: str
  interval:
    description: Seconds between heartbeats (and between looks at the stats area).
    type: float
    default: 0.1
  config:
    description:
      - Scaling configuration (JSON, see the filter C(onvm.nfv.scaler_config)). Without it the agent only
        keeps the global view. A change of its content restarts the agent.
    type: path
  metrics:
    description:
      - Serve Prometheus metrics (ports, instances, scale events) at C(http://ADDR:PORT/metrics);
        C(PORT) alone listens on 127.0.0.1. Omitted, no metrics are served.
    type: str
  state:
    description:
      - Whether the agent should run. V(stopped) also removes the pid and state files of an agent that was
        killed.
    type: str
    choices: [started, stopped]
    default: started
  timeout:
    description: Seconds to wait for the agent to come up.
    type: int
    default: 20
  supervisor:
    description:
      - How the agent is kept running. C(auto) picks systemd where it is PID 1 - the unit
        C(onvm-scaler-<host>.service), written by this module, enabled, ordered after the host's manager
        (C(onvm-mgr-<host>.service)) and the network, C(Restart=always); a new configuration is a new unit and
        a restart. C(detached) starts it with a pid file and a state file under C(/run/onvm).
    type: str
    choices: [auto, systemd, detached]
    default: auto
author:
  - onvm engineers (@onvm)
"""

EXAMPLES = r"""
- name: Agent of lab1, view on the control node
  onvm.nfv.scaler:
    host: lab1
    redis: redis://198.18.0.1:6379/0
    redis_password_file: /etc/onvm/lab1/redis.pass
    binary: /opt/onvm/lab1/venv/bin/onvm-scaler

- name: Agent of lab2, with Prometheus metrics on its management address
  onvm.nfv.scaler:
    host: lab2
    redis: redis://198.18.0.1:6379/0
    binary: /opt/onvm/lab2/venv/bin/onvm-scaler
    metrics: 198.18.0.12:9470
"""

RETURN = r"""
pid:
  description: Process id of the agent (null when stopped).
  returned: always
  type: int
argv:
  description: Command line of the agent.
  returned: always
  type: list
  elements: str
supervisor:
  description: C(systemd) where the agent runs as a unit; absent for a detached agent.
  returned: when systemd supervises it
  type: str
"""

import hashlib
import os
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.onvm.nfv.plugins.module_utils import global_view, names, units
from ansible_collections.onvm.nfv.plugins.module_utils.listen import parse_listen
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import name_ok
from ansible_collections.onvm.nfv.plugins.module_utils.supervise import Daemon, DaemonError, fingerprint


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            redis=dict(type="str", default="redis://127.0.0.1:6379/0"),
            redis_password_file=dict(type="path", no_log=False),  # a path, not the password
            binary=dict(type="path"),
            interval=dict(type="float", default=0.1),
            config=dict(type="path"),
            metrics=dict(type="str"),
            state=dict(type="str", choices=["started", "stopped"], default="started"),
            build_id=dict(type="str"),
            timeout=dict(type="int", default=20),
            supervisor=dict(type="str", choices=["auto", "systemd", "detached"], default="auto"),
        ),
        required_if=[("state", "started", ("binary",))],
        supports_check_mode=True,
    )
    p = module.params
    if not name_ok(p["host"]):
        module.fail_json(msg="host: '%s' is not a valid name (1-31 of [A-Za-z0-9_.-])" % p["host"])
    if p["metrics"]:
        try:
            parse_listen(p["metrics"])
        except ValueError as e:
            module.fail_json(msg="metrics: %s" % e)
    argv = [
        p["binary"] or "onvm-scaler",
        "--host",
        p["host"],
        "--redis",
        p["redis"],
        "--interval",
        str(p["interval"]),
    ]
    if p["metrics"]:
        argv += ["--metrics", p["metrics"]]
    if p["redis_password_file"]:
        argv += ["--redis-password-file", p["redis_password_file"]]
    conf: dict[str, object] = {"argv": argv}
    if p["build_id"]:
        conf["build_id"] = p["build_id"]
    if p["config"]:
        try:
            with open(p["config"], "rb") as f:
                # a new configuration restarts the agent, the same path or not
                conf["config_sha256"] = hashlib.sha256(f.read()).hexdigest()
        except OSError as e:
            if not module.check_mode:  # in check mode the role has not written it yet
                module.fail_json(msg="config: cannot read %s: %s" % (p["config"], e))
            conf["config_sha256"] = None
        argv += ["--config", p["config"]]
    if p["redis_password_file"]:
        try:
            with open(p["redis_password_file"], "rb") as f:
                # a new password restarts the agent too (only its digest is kept)
                conf["password_sha256"] = hashlib.sha256(f.read()).hexdigest()
        except OSError as e:
            if not module.check_mode:  # in check mode the role has not written it yet
                module.fail_json(
                    msg="redis_password_file: cannot read %s: %s" % (p["redis_password_file"], e)
                )
            conf["password_sha256"] = None
    if p["state"] == "started":
        # an agent with no view to keep would start and only log: say it now
        problem = global_view.ping(p["redis"], p["redis_password_file"])
        if problem is not None and module.check_mode:
            # (a check before the first deploy: the play has not started Redis yet)
            module.warn("redis: %s" % problem)
        elif problem is not None:
            module.fail_json(msg="redis: %s" % problem, argv=argv)
    use_systemd = p["supervisor"] == "systemd" or (p["supervisor"] == "auto" and units.systemd_is_init())
    if use_systemd:
        _systemd(module, p, argv, conf)
    d = Daemon(names.daemon(names.SCALER, p["host"]), argv, conf)
    pid = d.pid()
    # a killed agent's pid and state files (no process of ours behind them)
    stale = pid is None and any(os.path.exists(f) for f in (d.pid_file, d.state_file))
    if p["state"] == "stopped":
        changed = pid is not None or stale
    else:
        changed = pid is None or not d.same_config()
    result = dict(
        changed=changed,
        argv=argv,
        pid=pid,
        diff=dict(
            before={"running": pid is not None, "argv": (d.recorded() or {}).get("config")},
            after={"running": p["state"] == "started", "argv": conf},
        ),
    )
    if module.check_mode or not changed:
        module.exit_json(**result)
    if pid is not None or stale:
        d.stop(pid)  # (removes the pid and state files too)
    if p["state"] == "started":
        started = time.monotonic()
        try:
            # up once it has lived a second: its errors (bad URL, no stats) are logged, not fatal
            result["pid"] = d.start(lambda: time.monotonic() - started > 1.0, timeout=p["timeout"])
        except DaemonError as e:
            module.fail_json(msg=str(e), **result)
    else:
        result["pid"] = None
    module.exit_json(**result)


def unit_text(host: str, argv: list[str], conf: dict[str, object]) -> str:
    """The agent's unit: after its host's manager (it waits for the stats
    area anyway) and the network (Redis is remote); restarted always."""
    mgr = names.unit(names.MANAGER, host)
    text: str = units.unit_text(
        "onvm scaling agent of host %s" % host,
        argv,
        fingerprint(conf),
        after=("network-online.target", mgr),
        wants=("network-online.target", mgr),
        restart="always",
    )
    return text


def _systemd(module: AnsibleModule, p: dict[str, Any], argv: list[str], conf: dict[str, object]) -> None:
    """Where systemd is PID 1: the unit onvm-scaler-<host>.service, written
    here (a new configuration is a new unit text, and a restart)."""
    name = names.unit(names.SCALER, p["host"])
    text = unit_text(p["host"], argv, conf)
    before = units.current_text(name)
    pid = units.main_pid(name) if before is not None else None
    if p["state"] == "stopped":
        changed = before is not None
    else:
        changed = before != text or pid is None
    result: dict[str, Any] = dict(
        changed=changed,
        argv=argv,
        pid=pid,
        supervisor="systemd",
        diff=dict(before={"unit": before or ""}, after={"unit": text if p["state"] == "started" else ""}),
    )
    if module.check_mode or not changed:
        module.exit_json(**result)
    try:
        if p["state"] == "stopped":
            units.remove(name)
            result["pid"] = None
        else:
            units.install(name, text)
            units.systemctl("enable", name)
            units.systemctl("restart", name)
            result["pid"] = units.main_pid(name)
    except (OSError, units.UnitError) as e:
        module.fail_json(msg=str(e), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
