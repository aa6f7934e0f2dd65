"""Ansible callback (bench/deploy.py): wall time of each task, written as
JSON to $ONVM_TASK_TIMES when the run ends.  A task's time runs from its
start to the next task's start (or the end): what the run spent there."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: onvm_task_times
type: aggregate
short_description: Wall time per task, as JSON in $ONVM_TASK_TIMES
description: Used by bench/deploy.py to say where a deploy's time goes.
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "onvm_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._times: list[list[Any]] = []
        self._current: list[Any] | None = None

    def _close(self) -> None:
        if self._current is not None:
            self._current[1] = round(time.monotonic() - self._current[1], 3)
            self._times.append(self._current)
            self._current = None

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._close()
        self._current = [task.get_name(), time.monotonic()]

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._close()
        path = os.environ.get("ONVM_TASK_TIMES")
        if path:
            with open(path, "w") as f:
                json.dump(self._times, f)
