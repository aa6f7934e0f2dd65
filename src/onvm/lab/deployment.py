"""A deployment made by deploy.yml on this machine under names of its own,
for tests and benchmarks that change it as an operator would (group_vars
edited, the playbook re-run) and look at what runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.onvm.nfv.plugins.module_utils import chains as ch
from ansible_collections.onvm.nfv.plugins.module_utils import names
from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from ansible_collections.onvm.nfv.plugins.module_utils.manager_proc import status
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlClient
from ansible_collections.onvm.nfv.plugins.module_utils.supervise import Daemon

from .manager import REPO
from .single_host import VERSION

VENV_BIN = os.path.join(REPO, ".venv/bin")
WEB = {"match": {"in_port": "port0", "proto": "udp"}, "services": ["firewall", "forward"], "egress": "port1"}
SERVICES = {
    "firewall": {
        "image": "onvm/firewall:%s" % VERSION,
        "instances": 1,
        "max_instances": 2,
        "args": ["-r", "/etc/onvm/fw.rules"],
        "files": {"fw.rules": "/etc/onvm/fw.rules"},
    },
    "forward": {"image": "onvm/forward:%s" % VERSION, "instances": 1},
}


# this machine as an inventory host, run with the playbook's own Python
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}


def ansible(tool: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``TOOL ARGS`` (ansible-playbook, ansible-inventory, ...) from the
    project's venv, in the project directory, without colour."""
    return subprocess.run(
        [os.path.join(VENV_BIN, tool), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PATH": VENV_BIN + ":" + os.environ["PATH"], "ANSIBLE_NOCOLOR": "1"},
    )


def inventory_yaml(hosts: dict[str, dict[str, Any]]) -> str:
    """An inventory whose group ``onvm`` holds these hosts, with their vars;
    ``localhost``, where it is one of them, holds the global view too (group
    ``onvm_state``, as in inventory/local)."""
    groups: dict[str, Any] = {"onvm": {"hosts": hosts}}
    if "localhost" in hosts:
        groups["onvm_state"] = {"hosts": {"localhost": None}}
    return str(yaml.safe_dump({"all": {"children": groups}}))


class Deployment:
    """deploy.yml on this machine under names of its own: host ``name``, its
    own Redis (global view), metrics port and the manager on cpu 1, so that
    it shares nothing with a deployment of inventory/local."""

    def __init__(self, name: str, where: Path, redis_port: int = 6393, metrics_port: int = 9473) -> None:
        self.name = name
        self.where = where
        self.inventory = where / "inventory"
        (self.inventory / "group_vars" / "onvm").mkdir(parents=True)
        files = where / "files"
        files.mkdir()
        (files / "fw.rules").write_text("default allow\n")
        (self.inventory / "hosts.yml").write_text(
            inventory_yaml(
                {
                    "localhost": {
                        **LOCAL,
                        "onvm_host": name,
                        "onvm_state_port": redis_port,
                        "onvm_state_dir": "/var/lib/onvm-redis-%s" % name,
                        "onvm_scaler_redis": "redis://127.0.0.1:%d/0" % redis_port,
                        "onvm_scaler_metrics": "127.0.0.1:%d" % metrics_port,
                    }
                }
            )
        )
        self.good: dict[str, Any] = {
            "onvm_hugepages": 256,
            "onvm_hugepages_at_least": True,
            "onvm_manager": {"core": 1, "mem_mb": 64},
            "onvm_lab_ports": 2,
            "onvm_ports": [],
            "onvm_files_dir": str(files),
            "onvm_services": SERVICES,
            "onvm_chains": {"web": WEB},
        }
        self.write_vars(self.good)

    def write_vars(self, group_vars: dict[str, Any]) -> None:
        """Edit the inventory's group_vars, as an operator does."""
        (self.inventory / "group_vars" / "onvm" / "main.yml").write_text(yaml.safe_dump(group_vars))

    def run(
        self, playbook: str, change: dict[str, Any] | None = None, options: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        """``ansible-playbook PLAYBOOK`` on this inventory (``change``: extra
        vars; ``options``: e.g. ``--check``, ``--diff``)."""
        args = ["ansible-playbook", playbook, "-i", str(self.inventory), *options]
        if change:
            extra = self.where / "change.yml"
            extra.write_text(yaml.safe_dump(change))
            args += ["-e", "@%s" % extra]
        return ansible(*args)

    def files_with_rules(self, rules: str) -> str:
        """A files directory like the deployment's, its fw.rules rewritten."""
        other = self.where / "files-changed"
        other.mkdir(exist_ok=True)
        (other / "fw.rules").write_text(rules)
        return str(other)

    def state(self, client: Any) -> dict[str, Any]:
        """What must not move when a change is refused."""
        with CtlClient(self.name) as ctl:
            chains = ch.current(ctl)
            nfs = sorted((n["service"], n["state"], n["pid"]) for n in ctl.call("nf_list")["nfs"])
        with open("/proc/sys/vm/nr_hugepages") as f:
            pages = int(f.read())
        return {
            "manager_pid": status(self.name)["pid"],
            "containers": sorted((c.name, c.status, c.id) for c in nc.find(client, self.name)),
            "instances": nfs,
            "chains": chains,
            "hugepages": pages,
            "rules": Path(names.config_file(self.name, "fw.rules")).read_text(),
            "scaler_pid": Daemon(names.daemon(names.SCALER, self.name), [names.SCALER]).pid(),
            "scaler_config": Path(names.config_file(self.name, "scaler.json")).read_text(),
        }

    def remove(self) -> None:
        """undeploy.yml, and the global view's data directory."""
        self.run("undeploy.yml")
        shutil.rmtree("/var/lib/onvm-redis-%s" % self.name, ignore_errors=True)


def recap(out: str) -> dict[str, int]:
    line = next(ln for ln in out.splitlines() if ln.startswith("localhost") and "ok=" in ln)
    return {k: int(v) for k, v in (f.split("=") for f in line.split(":", 1)[1].split())}
