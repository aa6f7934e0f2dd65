#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nf
short_description: Run a number of instances of a network function as containers attached to onvm-mgr
version_added: "0.1.0"
description:
  - Each instance is a container C(onvm-<host>-<service>-<n>) of a local image, a DPDK secondary of the
    host's manager, with no network (C(--network none)), all capabilities dropped but C(SYS_NICE), a
    read-only root and the hugetlbfs mount and DPDK runtime directory bound in. The module waits until
    the manager has registered each new instance.
  - Idempotent on the instance count and configuration. Stopped instances are removed and started again.
    Running instances of another configuration (image, arguments, cores, the files they mount, by content),
    the scaler's included, are replaced as a rolling update - each replacement starts at a new index and
    registers with the manager first, then the old instance is drained with its flows moved at once to the
    new ones (no packet lost, and every packet that arrives after the module returns meets the new
    configuration, e.g. a firewall's new rules) and stopped. A replacement that does not come up fails the
    task with the old instances still serving.
  - Before any instance is started (and in check mode), the image is asked whether it accepts the options
    and the files they name (C(docker run --rm IMAGE --check ...), which parses them, e.g. a firewall's rules
    file, attaches to nothing and exits). A refusal fails the task before anything is started or stopped.
  - Uses the Docker SDK for Python (the C(docker) package) to run instances, and the docker CLI for the
    option check.
extends_documentation_fragment:
  - onvm.nfv.onvm
  - onvm.nfv.onvm.runtime_dir
  - onvm.nfv.attributes
  - onvm.nfv.attributes.actiongroup_onvm
attributes:
  check_mode:
    support: full
    details:
      - In check mode too, the image checks the options and the files they name (C(docker run --rm IMAGE
        --check ...), attached to nothing); nothing is started or stopped.
      - A file under O(files) that an earlier task of the same check-mode run would change is foreseen through
        O(file_digests).
      - RV(instances) is empty in check mode.
  diff_mode:
    support: partial
    details:
      - The diff lists the instances' containers before and after, and under C(old_configuration) those
        replaced for running another configuration; it does not show which setting (image, arguments, cores,
        file contents) differs.
  idempotent:
    support: full
    details:
      - A count between O(instances) and O(max_instances) is the scaler's; a run that finds it there changes
        nothing.
options:
  service:
    description: Service name the instances register as.
    type: str
    required: true
  image:
    description: Local image of the NF, e.g. C(onvm/firewall:0.1.0). It must exist on the host (no registry).
    type: str
    required: true
  instances:
    description: Number of instances wanted (the least there will be).
    type: int
    default: 1
  max_instances:
    description:
      - The most instances there may be. Between O(instances) and O(max_instances) the count is left to
        the scaler (C(onvm-scaler)), and a run that finds it there changes nothing.
      - Instances above it are drained (no new flows; their flows go idle or move after O(drain_bound)
        seconds; nothing they hold is lost) and then stopped, highest index first.
      - Defaults to O(instances).
    type: int
  drain_bound:
    description: Seconds a surplus instance keeps its flows before they are moved to the other instances.
    type: float
    default: 5.0
  args:
    description: The NF's own arguments (after C(--)).
    type: list
    elements: str
    default: []
  files:
    description: Files to mount read-only in each instance, host path to path inside.
    type: dict
    default: {}
  file_digests:
    description:
      - SHA-256 (hex) of files under O(files) as they will be, by host path, where the caller knows it
        beforehand; the others are read on the host.
      - roles/onvm_nfs passes those of the files the play copies, so that in check mode (C(deploy.yml --check
        --diff)), where a changed file is not written yet, the instances it will replace are foreseen.
    type: dict
    default: {}
  check_files:
    description:
      - Host files to mount in the option check instead of what O(files) mounts, by path inside the NF - new
        versions staged before they are put in place. Only the check reads them, and a file under O(files)
        need not exist yet where one is given here.
      - C(deploy.yml) checks every service's options on every host this way in its first play, before any host
        is changed (roles/onvm_nfs, C(tasks/check.yml)).
    type: dict
    default: {}
  cores:
    description: CPUs for the instances' packet loops; instance n gets C(cores[n % len(cores)]).
      Unpinned if empty.
    type: list
    elements: int
    default: []
  shared_core:
    description: Instances sleep as soon as idle (many NFs on few cores).
    type: bool
    default: false
  state:
    description: C(present) runs O(instances) instances; C(absent) removes them all.
    type: str
    choices: [present, absent]
    default: present
  huge_dir:
    description: hugetlbfs mount bound into the containers.
    type: path
    default: /dev/hugepages
  timeout:
    description: Seconds to wait for each new instance to register with the manager.
    type: int
    default: 30
requirements:
  - docker (Python SDK)
author:
  - onvm engineers (@onvm)
"""

EXAMPLES = r"""
- name: Two firewall instances on lab1
  onvm.nfv.nf:
    host: lab1
    service: firewall
    image: onvm/firewall:0.1.0
    instances: 2
    args: ["-r", "/etc/onvm/fw.rules"]
    files:
      /etc/onvm/lab1/fw.rules: /etc/onvm/fw.rules
"""

RETURN = r"""
instances:
  description: The running instances after the change.
  returned: always
  type: list
  elements: dict
  sample: [{"container": "onvm-lab1-firewall-0", "instance": 0, "pid": 4321}]
started:
  description: Names of the containers started.
  returned: always
  type: list
  elements: str
removed:
  description: Names of the containers removed.
  returned: always
  type: list
  elements: str
replaced:
  description:
    - Names of the removed containers that ran another configuration (each has a replacement in RV(started)).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.onvm.nfv.plugins.module_utils import nf_container as nc
from ansible_collections.onvm.nfv.plugins.module_utils.onvm_ctl import CtlError, name_ok

try:
    import docker
    import docker.errors

    HAS_DOCKER = True
except ImportError:
    HAS_DOCKER = False

MAX_INSTANCES = 64


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            service=dict(type="str", required=True),
            image=dict(type="str", required=True),
            instances=dict(type="int", default=1),
            max_instances=dict(type="int"),
            drain_bound=dict(type="float", default=5.0),
            args=dict(type="list", elements="str", default=[]),
            files=dict(type="dict", default={}),
            file_digests=dict(type="dict", default={}),
            check_files=dict(type="dict", default={}),
            cores=dict(type="list", elements="int", default=[]),
            shared_core=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            runtime_dir=dict(type="path", default="/var/run/dpdk"),
            huge_dir=dict(type="path", default="/dev/hugepages"),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"))
    p = module.params
    for key in ("host", "service"):
        if not name_ok(p[key]):
            module.fail_json(msg="%s: '%s' is not a valid name (1-31 of [A-Za-z0-9_.-])" % (key, p[key]))
    if not 0 <= p["instances"] <= MAX_INSTANCES:
        module.fail_json(msg="instances: must be 0-%d, got %d" % (MAX_INSTANCES, p["instances"]))
    if p["max_instances"] is not None and not p["instances"] <= p["max_instances"] <= MAX_INSTANCES:
        module.fail_json(
            msg="max_instances: must be %d-%d (at least instances), got %d"
            % (p["instances"], MAX_INSTANCES, p["max_instances"])
        )
    want = p["instances"] if p["state"] == "present" else 0
    most = 0 if p["state"] == "absent" else p["max_instances"] if p["max_instances"] is not None else want
    for src, dst in p["files"].items() if most > 0 else []:
        if dst in p["check_files"]:
            src = p["check_files"][dst]
        # (in check mode a file the play has yet to write is known by its digest)
        if not os.path.isfile(src) and not (module.check_mode and src in p["file_digests"]):
            module.fail_json(msg="files: '%s' is not a file on the host" % src)
    try:
        client = docker.from_env()
        if most > 0:
            client.images.get(p["image"])
    except docker.errors.ImageNotFound:
        module.fail_json(
            msg="image: '%s' is not on this host (onvm images: scripts/build-artifacts.sh builds them, "
            "roles/onvm_host loads them; others: load or pull it there)" % p["image"]
        )
    except docker.errors.DockerException as e:
        module.fail_json(msg="cannot reach the Docker engine: %s" % e)

    conf = nc.ServiceConf(
        image=p["image"],
        args=p["args"],
        files=p["files"],
        file_digests=p["file_digests"],
        cores=p["cores"],
        shared_core=p["shared_core"],
        runtime_dir=p["runtime_dir"],
        huge_dir=p["huge_dir"],
    )

    image_id = nc.image_id(client, conf.image)

    def spec(index: int) -> nc.NFSpec:
        return nc.spec_for(p["host"], p["service"], conf, index, image_id)

    existing = {
        c.name: (c.status == "running", c.labels.get(nc.LABEL_CONFIG, ""))
        for c in nc.find(client, p["host"], p["service"])
    }
    plan = nc.plan(existing, want, lambda i: spec(i).fingerprint(), most)
    changed = bool(plan.start or plan.remove)
    after = sorted(plan.keep + [nc.instance_name(p["host"], p["service"], i) for i in plan.start])
    result = dict(
        changed=changed,
        started=[nc.instance_name(p["host"], p["service"], i) for i in plan.start],
        removed=plan.remove,
        replaced=plan.stale,
        instances=[],
        diff=dict(before={"containers": sorted(existing)}, after={"containers": after}),
    )
    if plan.stale:  # what runs another configuration: replaced
        result["diff"]["before"]["old_configuration"] = plan.stale
    if plan.start:
        # the NF checks its options (and the files they name) first, in check
        # mode too: nothing is started or stopped for options it refuses
        staged = p["check_files"] or None
        mounts = nc.check_mounts(conf, staged)
        missing = sorted(f for f in mounts.values() if not os.path.exists(f))
        if missing and module.check_mode:
            # a check before the play wrote them: the NF cannot be asked yet
            module.warn(
                "%s: not asked about its options: %s not on the host yet" % (p["service"], ", ".join(missing))
            )
            why = None
        else:
            why = nc.check_options(nc.check_argv(p["host"], p["service"], conf, staged))
        if why is not None:
            module.fail_json(
                msg="refused: %s would not start with these options, nothing was changed: %s"
                % (p["service"], why),
                **{k: v for k, v in result.items() if k not in ("changed", "diff")},
            )
    if module.check_mode:
        module.exit_json(**result)
    running = {e["container"]: e for e in _running(client, p)}
    # 1. what no longer runs serves nothing: it goes first
    for name in plan.remove:
        if name not in running:
            nc.stop(client, name, timeout=5)
    # 2. the new instances register before anything that serves goes (a
    #    failure here leaves the old ones serving)
    for i in plan.start:
        try:
            nc.start(client, spec(i), timeout=p["timeout"])
        except (nc.NFError, CtlError, docker.errors.DockerException) as e:
            module.fail_json(
                msg="starting %s: %s (the old instances still serve)" % (spec(i).name, e), **result
            )
    # 3. then what serves goes, losing no packet: an old configuration at
    #    once (its flows move to the new instances now), a surplus one
    #    after drain_bound
    for name in plan.remove:
        if name not in running:
            continue
        inst = running[name].get("instance")
        if most > 0 and isinstance(inst, int):
            bound = 0.0 if name in plan.stale else p["drain_bound"]
            try:
                nc.drain(p["host"], inst, bound, bound + p["timeout"], p["runtime_dir"])
            except (nc.NFError, CtlError) as e:
                module.fail_json(msg="draining %s: %s" % (name, e), **result)
        nc.stop(client, name, timeout=5)
    result["instances"] = _running(client, p)
    module.exit_json(**result)


def _running(client: object, p: dict[str, object]) -> list[dict[str, object]]:
    out = []
    for c in nc.find(client, str(p["host"]), str(p["service"])):
        if c.status != "running":
            continue
        pid = int(c.attrs["State"]["Pid"])
        entry = nc.instance_of(str(p["host"]), pid, str(p["runtime_dir"]))
        out.append({"container": c.name, "pid": pid, "instance": entry["instance"] if entry else None})
    return sorted(out, key=lambda e: str(e["container"]))


if __name__ == "__main__":
    main()
