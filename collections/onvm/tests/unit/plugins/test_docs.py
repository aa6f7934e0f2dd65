# SPDX-License-Identifier: BSD-3-Clause
"""The collection as its users meet it: ``ansible-doc`` for every module and
every filter (each filter of the shared plugin file has its own
``<name>.yml``), the attributes every module documents, and
``module_defaults`` through the action group of meta/runtime.yml.

Runs the venv's ansible-doc / ansible-playbook from the repository's top,
where ansible.cfg puts the collection on the collections path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.onvm.nfv.plugins.filter.config_errors import FilterModule

COLLECTION = Path(__file__).resolve().parents[3]
REPO = COLLECTION.parents[1]
BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
FILTERS = sorted(FilterModule().filters())
ATTRIBUTES = ("check_mode", "diff_mode", "idempotent")
SUPPORT = ("full", "partial", "none", "N/A")


def _run(tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PYTHONWARNINGS="ignore")
    env.pop("ANSIBLE_CONFIG", None)  # ansible.cfg of the repository's top (cwd)
    return subprocess.run(
        [str(BIN / tool), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _doc_json(plugin_type: str, names: list[str]) -> dict[str, Any]:
    proc = _run("ansible-doc", "-t", plugin_type, "--json", *("onvm.nfv." + n for n in names))
    assert proc.returncode == 0, proc.stderr
    docs: dict[str, Any] = json.loads(proc.stdout)
    return docs


@pytest.fixture(scope="module")
def module_docs() -> dict[str, Any]:
    return _doc_json("module", MODULES)


@pytest.fixture(scope="module")
def filter_docs() -> dict[str, Any]:
    return _doc_json("filter", FILTERS)


def test_the_collection_has_what_the_docs_cover() -> None:
    assert MODULES == ["chain", "dpdk_bind", "hugepages", "manager", "nf", "onvm_info", "scaler"]
    assert len(FILTERS) == 11
    for name in FILTERS:
        assert (COLLECTION / "plugins" / "filter" / (name + ".yml")).is_file(), name


@pytest.mark.parametrize("plugin_type", ["module", "filter"])
def test_every_plugin_renders(plugin_type: str) -> None:
    names = MODULES if plugin_type == "module" else FILTERS
    proc = _run("ansible-doc", "-t", plugin_type, *("onvm.nfv." + n for n in names))
    assert proc.returncode == 0, proc.stderr
    for name in names:
        assert "> %s onvm.nfv.%s " % (plugin_type.upper(), name) in proc.stdout
    assert "ERROR" not in proc.stderr


# the action group: the modules that talk to one host's manager (all take host and runtime_dir)
GROUP = ("chain", "manager", "nf", "onvm_info")


def test_the_action_group_is_the_modules_sharing_host_and_runtime_dir(module_docs: dict[str, Any]) -> None:
    for fqcn, entry in module_docs.items():
        options = entry["doc"]["options"]
        shared = "host" in options and "runtime_dir" in options
        assert shared == (fqcn.rpartition(".")[2] in GROUP), fqcn


def test_every_module_documents_its_options_and_attributes(module_docs: dict[str, Any]) -> None:
    assert sorted(module_docs) == ["onvm.nfv." + m for m in MODULES]
    for fqcn, entry in module_docs.items():
        doc = entry["doc"]
        attributes = doc["attributes"]
        for attr in ATTRIBUTES:
            assert attributes[attr]["support"] in SUPPORT, (fqcn, attr)
            assert attributes[attr]["description"], (fqcn, attr)
            if attributes[attr]["support"] in ("partial", "N/A"):
                assert attributes[attr].get("details"), (fqcn, attr)  # why not full
        assert attributes["platform"]["platforms"] == "linux", fqcn
        if fqcn.rpartition(".")[2] in GROUP:
            assert attributes["action_group"]["membership"] == ["onvm.nfv.onvm"], fqcn
        else:
            assert "action_group" not in attributes, fqcn
        assert "extends_documentation_fragment" not in doc, fqcn  # all merged
        assert entry["examples"] and entry["return"], fqcn


def test_the_shared_options_come_from_the_fragment(module_docs: dict[str, Any]) -> None:
    for fqcn, entry in module_docs.items():
        options = entry["doc"]["options"]
        if "host" in options:
            assert options["host"]["type"] == "str" and options["host"]["required"] is True, fqcn
            assert "1-31 characters" in str(options["host"]["description"]), fqcn
        if "runtime_dir" in options:
            assert options["runtime_dir"]["default"] == "/var/run/dpdk", fqcn
            assert "onvm.sock" in str(options["runtime_dir"]["description"]), fqcn
    with_host = sorted(f for f, e in module_docs.items() if "host" in e["doc"]["options"])
    assert with_host == ["onvm.nfv." + m for m in ("chain", "manager", "nf", "onvm_info", "scaler")]


def test_every_filter_has_its_own_doc(filter_docs: dict[str, Any]) -> None:
    assert sorted(filter_docs) == ["onvm.nfv." + f for f in FILTERS]
    shorts = {fqcn: entry["doc"]["short_description"] for fqcn, entry in filter_docs.items()}
    assert len(set(shorts.values())) == len(FILTERS), shorts  # none borrows another's text
    for fqcn, entry in filter_docs.items():
        name = fqcn.rsplit(".", 1)[1]
        assert entry["doc"]["name"] == name
        assert Path(entry["doc"]["filename"]).name == name + ".yml"
        assert "_input" in entry["doc"]["options"], fqcn
        assert entry["examples"] and "onvm.nfv." + name in entry["examples"], fqcn
        assert "_value" in entry["return"], fqcn

    listed = _run("ansible-doc", "-t", "filter", "-l", "--json", "onvm.nfv")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == shorts


def test_module_defaults_reach_the_modules_through_the_action_group(tmp_path: Path) -> None:
    """group/onvm.nfv.onvm gives host and runtime_dir (a directory where no
    manager runs) to onvm_info, which reports no manager, and to chain, which
    fails naming the host and socket it tried; nothing changes."""
    result = tmp_path / "result.json"
    runtime_dir = tmp_path / "dpdk"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "module_defaults": {"group/onvm.nfv.onvm": {"host": "xyz", "runtime_dir": str(runtime_dir)}},
            "tasks": [
                {"name": "info", "onvm.nfv.onvm_info": {}, "check_mode": True, "register": "info"},
                {
                    # not in check mode (where a missing manager is a warning): it fails
                    # before it could change anything
                    "name": "chain",
                    "onvm.nfv.chain": {},
                    "register": "chain",
                    "ignore_errors": True,
                },
                {
                    "name": "results",
                    "ansible.builtin.copy": {
                        "content": "{{ {'info': info, 'chain': chain} | to_json }}",
                        "dest": str(result),
                        "mode": "0644",
                    },
                },
            ],
        }
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))  # JSON is YAML
    proc = _run(
        "ansible-playbook",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        "ansible_python_interpreter=" + sys.executable,
        str(playbook),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(result.read_text())
    assert out["info"]["failed"] is False and out["info"]["running"] is False, out["info"]
    assert out["chain"]["failed"] is True, out["chain"]
    assert out["chain"]["msg"] == "no onvm-mgr for host 'xyz' (%s: No such file or directory)" % (
        runtime_dir / "onvm-xyz" / "onvm.sock"
    )
    assert not runtime_dir.exists()
