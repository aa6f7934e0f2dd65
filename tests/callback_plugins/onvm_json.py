# SPDX-License-Identifier: BSD-3-Clause
"""A stdout callback for the tests: the whole run as one JSON document,
shaped like ansible.posix's ``json`` callback (which ansible-core does not
ship): ``plays[].tasks[].hosts[host]`` is each task's result (the module's
return, ``diff`` included) and ``stats[host]`` the recap. Loaded by
tests/test_modules_ansible.py through ANSIBLE_CALLBACK_PLUGINS (and
ANSIBLE_LOAD_CALLBACK_PLUGINS=1 for ad-hoc ``ansible``)."""

from __future__ import annotations

import json
from typing import Any

from ansible.plugins.callback import CallbackBase
from ansible.vars.clean import module_response_deepcopy, strip_internal_keys

DOCUMENTATION = """
name: onvm_json
type: stdout
short_description: The run as one JSON document (tests only)
description:
  - Prints, at the end of the run, every task's result per host and the recap as JSON.
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "onvm_json"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plays: list[dict[str, Any]] = []

    def _tasks(self) -> list[dict[str, Any]]:
        if not self.plays:
            self.plays.append({"play": {"name": ""}, "tasks": []})
        tasks: list[dict[str, Any]] = self.plays[-1]["tasks"]
        return tasks

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._tasks().append({"task": {"name": task.get_name(), "action": task.action}, "hosts": {}})

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self.v2_playbook_on_task_start(task, False)

    def _record(self, result: Any, **status: Any) -> None:
        tasks = self._tasks()
        if not tasks:
            tasks.append({"task": {"name": "", "action": ""}, "hosts": {}})
        entry = strip_internal_keys(module_response_deepcopy(result._result))
        entry.update(status)
        tasks[-1]["hosts"][result._host.get_name()] = entry

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, failed=True)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, unreachable=True)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        doc = {"plays": self.plays, "stats": recap}
        self._display.display(json.dumps(doc, default=str, sort_keys=True))
