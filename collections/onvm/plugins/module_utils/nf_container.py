# SPDX-License-Identifier: BSD-3-Clause
"""NF instances as containers: the one implementation of starting, finding
and stopping them, used by the ``onvm.nfv.nf`` module, the scaler and tests.

An NF container is a DPDK secondary of its host's onvm-mgr: it runs with
no network (packets travel through shared memory), the hugetlbfs mount and
the DPDK runtime directory bind-mounted, all capabilities dropped but
SYS_NICE (the one DPDK needs here), a read-only root and no new privileges.

All NF containers of a host share one PID namespace, held by a small
``onvm/pause`` container (as a pod's pause container does): a DPDK
secondary names its private files in the runtime directory after its pid,
so containers that were each pid 1 would collide there.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import names
from .onvm_ctl import DEFAULT_RUNTIME_DIR, CtlClient, CtlError
from .supervise import file_digest, fingerprint

LABEL_MANAGED = "org.onvm.managed"
LABEL_HOST = "org.onvm.host"
LABEL_SERVICE = "org.onvm.service"
LABEL_ROLE = "org.onvm.role"
LABEL_CONFIG = "org.onvm.config"
CAPABILITIES = ["SYS_NICE"]
PAUSE_IMAGE = "onvm/pause:latest"


class NFError(Exception):
    """An NF container could not be started, or never registered."""


@dataclass
class NFSpec:
    """What one NF instance is."""

    host: str
    service: str
    image: str
    name: str
    args: list[str] = field(default_factory=list)
    core: int | None = None
    shared_core: bool = False
    files: dict[str, str] = field(default_factory=dict)  # host path -> path inside, read-only
    runtime_dir: str = DEFAULT_RUNTIME_DIR
    huge_dir: str = "/dev/hugepages"
    labels: dict[str, str] = field(default_factory=dict)
    # host path -> SHA-256 the file will have, where known beforehand (check
    # mode: the play has not written a changed file yet); others are read
    file_digests: dict[str, str] = field(default_factory=dict)
    # the id the host's docker gives `image` (image_id()): a new build of the
    # image under the same tag is another configuration
    image_id: str = ""

    def fingerprint(self) -> str:
        """Identity of the configuration, whatever the container's name and
        labels (the scaler labels its instances with the request id).  The
        files an instance mounts count by their content: a rules file
        rewritten on the host is another configuration (an NF reads its
        files when it starts); the image counts by its id (a new build
        loaded under the same tag rolls the instances)."""
        conf = asdict(self)
        conf.pop("name")
        conf.pop("labels")
        conf.pop("file_digests")
        conf["file_content"] = {
            src: self.file_digests.get(src) or file_digest(src) for src in sorted(self.files)
        }
        return fingerprint(conf)

    def command(self) -> list[str]:
        cmd = ["--host", self.host, "--service", self.service, "--runtime-dir", self.runtime_dir]
        if self.core is not None:
            cmd += ["--core", str(self.core)]
        if self.shared_core:
            cmd.append("--shared-core")
        return [*cmd, "--", *self.args]


@dataclass
class ServiceConf:
    """What the inventory says about one service on one host; instance n of
    it is ``spec_for(host, service, conf, n)``, for the ``nf`` module and the
    scaler alike (same spec, same fingerprint: neither replaces the other's
    instances)."""

    image: str
    args: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    cores: list[int] = field(default_factory=list)
    shared_core: bool = False
    runtime_dir: str = DEFAULT_RUNTIME_DIR
    huge_dir: str = "/dev/hugepages"
    file_digests: dict[str, str] = field(default_factory=dict)  # see NFSpec


def image_id(client: Any, image: str) -> str:
    """The id the host's docker gives ``image`` ("" when it has none): part
    of an instance's configuration (NFSpec.image_id), filled in by start()
    where the caller left it empty, and given to spec_for() by the nf
    module, which compares configurations without starting anything."""
    import docker.errors  # deferred: only where docker is installed

    try:
        return str(client.images.get(image).id)
    except docker.errors.ImageNotFound:
        return ""


def spec_for(host: str, service: str, conf: ServiceConf, index: int, image_id: str = "") -> NFSpec:
    """Instance ``index`` of ``service`` on ``host``: cores taken in turn;
    ``image_id``: image_id(client, conf.image)."""
    return NFSpec(
        host=host,
        service=service,
        image=conf.image,
        name=instance_name(host, service, index),
        args=list(conf.args),
        core=conf.cores[index % len(conf.cores)] if conf.cores else None,
        shared_core=conf.shared_core,
        files=dict(conf.files),
        runtime_dir=conf.runtime_dir,
        huge_dir=conf.huge_dir,
        file_digests=dict(conf.file_digests),
        image_id=image_id,
    )


def check_mounts(conf: ServiceConf, source: dict[str, str] | None = None) -> dict[str, str]:
    """Path inside -> host file, of what the option check binds: what
    ``conf`` mounts, with ``source`` taking the place of files not yet in
    place (the copy task's ``validate``, the staged copies)."""
    mounts = {dst: src for src, dst in conf.files.items()}
    mounts.update(source or {})
    return mounts


def check_argv(host: str, service: str, conf: ServiceConf, source: dict[str, str] | None = None) -> list[str]:
    """The docker command that asks the NF image whether an instance would
    start with these options: ``--check`` parses them and reads the files
    they name (check_mounts), attaches to nothing and exits (0: it would)."""
    spec = spec_for(host, service, conf, 0)
    argv = ["docker", "run", "--rm", "--network", "none", "--cap-drop", "ALL", "--read-only"]
    argv += ["--security-opt", "no-new-privileges"]
    for dst, src in sorted(check_mounts(conf, source).items()):
        # --mount, not -v: a source that does not exist is an error, not a
        # directory docker makes in its place
        argv += ["--mount", "type=bind,src=%s,dst=%s,readonly" % (src, dst)]
    return [*argv, spec.image, "--check", *spec.command()]


def check_options(argv: list[str], timeout: float = 60.0) -> str | None:
    """Run ``check_argv``'s command: None if the NF accepts its options,
    else what it said."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "%s: %s" % (" ".join(argv[:2]), e)
    out = (proc.stderr + proc.stdout).strip()
    if proc.returncode == 0 or "unrecognized option '--check'" in out:
        return None  # (an image older than --check: nothing to ask it)
    return out or "exited %d" % proc.returncode


# the container holding a host's NF PID namespace
pidns_name = names.pidns_container


def _hardened(name: str, image: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "image": image,
        "name": name,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "labels": labels,
        "detach": True,
    }


def ensure_pidns(client: Any, host: str, image: str = PAUSE_IMAGE) -> bool:
    """Make sure ``host``'s PID-namespace holder runs; True if it was started."""
    import docker.errors  # deferred: only where docker is installed

    name = pidns_name(host)
    try:
        holder = client.containers.get(name)
        if holder.status == "running":
            return False
        holder.remove(force=True)
    except docker.errors.NotFound:
        pass
    labels = {LABEL_MANAGED: "true", LABEL_HOST: host, LABEL_ROLE: "pidns"}
    client.containers.run(**_hardened(name, image, labels))
    return True


def run_kwargs(spec: NFSpec) -> dict[str, Any]:
    """Arguments for docker's containers.create() (pure: unit-tested)."""
    volumes = {
        spec.huge_dir: {"bind": spec.huge_dir, "mode": "rw"},
        spec.runtime_dir: {"bind": spec.runtime_dir, "mode": "rw"},
    }
    for src, dst in spec.files.items():
        volumes[src] = {"bind": dst, "mode": "ro"}
    labels = {
        LABEL_MANAGED: "true",
        LABEL_HOST: spec.host,
        LABEL_SERVICE: spec.service,
        LABEL_ROLE: "nf",
        LABEL_CONFIG: spec.fingerprint(),
    }
    labels.update(spec.labels)
    kwargs = _hardened(spec.name, spec.image, labels)
    kwargs.update(
        command=spec.command(),
        cap_add=list(CAPABILITIES),
        volumes=volumes,
        pid_mode="container:" + pidns_name(spec.host),
        # an NF that dies (killed, or its manager went away) comes back by
        # itself and registers again; `docker stop` (nf module, scaler) ends it
        restart_policy={"Name": "unless-stopped"},
    )
    if spec.core is not None:
        kwargs["cpuset_cpus"] = str(spec.core)
    return kwargs


instance_name = names.container


@dataclass
class Plan:
    """What to do to reach ``want`` instances: indexes to start, names to
    remove (``stale``: those of them that run another configuration)."""

    start: list[int]
    remove: list[str]
    keep: list[str]
    stale: list[str] = field(default_factory=list)


def plan(
    existing: dict[str, tuple[bool, str]],
    want: int,
    fingerprint_of: Callable[[int], str],
    most: int | None = None,
) -> Plan:
    """Reconcile (pure).  ``existing`` maps container name -> (running,
    config fingerprint); ``fingerprint_of(n)`` is what instance n should
    carry.  Stopped containers are removed; running ones of another
    configuration (``stale``) are replaced one for one -- the scaler's too
    -- as a rolling update: their replacements take indexes no running
    container has, so they can start before the stale ones go.  Between
    ``want`` and ``most`` (default: ``want``) the running count is kept as
    it is (the scaler owns that range); above ``most`` the extra ones go,
    highest index first."""
    most = want if most is None else max(most, want)
    keep = sorted(
        (name for name, (running, fp) in existing.items() if running and fp == fingerprint_of(_index(name))),
        key=_index,
    )
    stale = sorted(
        (name for name, (running, _fp) in existing.items() if running and name not in keep), key=_index
    )
    remove = sorted(set(existing) - set(keep), key=_index)
    if len(keep) > most:
        remove += keep[most:]
        keep = keep[:most]
    target = max(want, min(most, len(keep) + len(stale)))
    taken = {_index(n) for n in keep + stale}
    start: list[int] = []
    i = 0
    while len(keep) + len(start) < target:
        if i not in taken:
            start.append(i)
        i += 1
    return Plan(start=start, remove=remove, keep=keep, stale=stale)


def _index(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 1 << 30


def find(client: Any, host: str, service: str | None = None) -> list[Any]:
    """Containers of ``host``'s NFs (all states), optionally of one service."""
    labels = [LABEL_MANAGED + "=true", LABEL_HOST + "=" + host, LABEL_ROLE + "=nf"]
    if service is not None:
        labels.append(LABEL_SERVICE + "=" + service)
    return list(client.containers.list(all=True, filters={"label": labels}))


def instance_of(host: str, pid: int, runtime_dir: str = DEFAULT_RUNTIME_DIR) -> dict[str, Any] | None:
    """The manager's entry for the NF process ``pid``, if registered and running."""
    with CtlClient(host, runtime_dir) as ctl:
        for nf in ctl.call("nf_list")["nfs"]:
            if nf["pid"] == pid and nf["state"] == "running":
                return dict(nf)
    return None


def start(client: Any, spec: NFSpec, timeout: float = 30.0) -> dict[str, Any]:
    """Start the container and wait until the manager has registered it.

    Returns the manager's entry for the instance plus ``container``.  On
    failure the container is removed (nothing half-started stays behind)
    and NFError carries the NF's own output.
    """
    try:
        CtlClient(spec.host, spec.runtime_dir).close()
    except CtlError as e:
        raise NFError(str(e)) from e
    ensure_pidns(client, spec.host)
    if not spec.image_id:  # its configuration label counts the image by its id, whoever starts it
        spec = replace(spec, image_id=image_id(client, spec.image))
    container = client.containers.create(**run_kwargs(spec))
    try:
        container.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            container.reload()
            state = container.attrs["State"]
            # unless-stopped: an NF that exits is started again, and Docker
            # says Running (and Restarting) meanwhile -- an exit all the same
            if not state["Running"] or state.get("Restarting") or container.attrs.get("RestartCount", 0):
                raise NFError(
                    "NF %s exited with %s: %s" % (spec.name, state.get("ExitCode"), _logs(container))
                )
            entry = instance_of(spec.host, int(state["Pid"]), spec.runtime_dir)
            if entry is not None:
                entry["container"] = spec.name
                return entry
            time.sleep(0.05)
        raise NFError(
            "NF %s did not register with the manager within %.0f s: %s"
            % (spec.name, timeout, _logs(container))
        )
    except BaseException:
        container.remove(force=True)
        raise


def remove_host(client: Any, host: str) -> int:
    """Remove every NF container of ``host`` and its PID-namespace holder."""
    gone = 0
    labels = [LABEL_MANAGED + "=true", LABEL_HOST + "=" + host]
    for c in client.containers.list(all=True, filters={"label": labels}):
        c.remove(force=True)
        gone += 1
    return gone


def stop(client: Any, name: str, timeout: int = 5) -> bool:
    """Stop and remove a container; False if there was none."""
    import docker.errors  # deferred: only where docker is installed

    try:
        container = client.containers.get(name)
    except docker.errors.NotFound:
        return False
    if timeout > 0:
        container.stop(timeout=timeout)
    container.remove(force=True)
    return True


def _entry(ctl: CtlClient, instance: int) -> dict[str, Any] | None:
    for nf in ctl.call("nf_list")["nfs"]:
        if nf["instance"] == instance and nf["state"] in ("running", "draining"):
            return dict(nf)
    return None


def drain(
    host: str,
    instance: int,
    idle_bound: float = 5.0,
    timeout: float = 30.0,
    runtime_dir: str = DEFAULT_RUNTIME_DIR,
    poll: float = 0.05,
) -> dict[str, Any]:
    """Take instance ``instance`` of ``host``'s manager out of service
    without losing a packet, so that it can be stopped.

    New flows avoid it at once; the flows it has stay on it until they go
    idle (the manager forgets an idle flow after its --flow-idle) or
    ``idle_bound`` seconds pass, then the rest move to the service's other
    instances.  Returns when it has processed everything it was given and
    nothing more comes: {"flows_moved", "seconds", "rx", "processed"}.
    Raises NFError if that takes longer than ``timeout``."""
    start = time.monotonic()
    with CtlClient(host, runtime_dir) as ctl:
        ctl.call("drain", instance=instance)
        e = _entry(ctl, instance)
        while e is not None and e["flows"] > 0 and time.monotonic() - start < idle_bound:
            time.sleep(poll)
            e = _entry(ctl, instance)
        moved = 0 if e is None else int(e["flows"])
        if e is not None and moved > 0:
            ctl.call("drain", instance=instance, evict=True)
        # quiescent: nothing waiting in its ring, all it took processed, and
        # the count unchanged over two polls (no sender was mid-enqueue)
        last = None
        while e is not None:
            if e["rx_ring"] == 0 and e["processed"] == e["rx"] and (moved == 0 or e["evicted"]):
                if last == e["rx"]:
                    break
                last = e["rx"]
            else:
                last = None
            if time.monotonic() - start > timeout:
                raise NFError(
                    "instance %d of %s did not drain within %.0f s: %s" % (instance, host, timeout, e)
                )
            time.sleep(poll)
            e = _entry(ctl, instance)
    return {
        "flows_moved": moved,
        "seconds": round(time.monotonic() - start, 3),
        "rx": None if e is None else e["rx"],
        "processed": None if e is None else e["processed"],
    }


def _logs(container: Any) -> str:
    try:
        return str(container.logs(tail=20).decode("utf-8", "replace").strip())
    except Exception:  # noqa: BLE001 - logs are a courtesy in an error path
        return "(no logs)"
