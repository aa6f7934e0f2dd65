# SPDX-License-Identifier: BSD-3-Clause
"""Run a module's main() in-process, the way collection unit tests do: the
arguments go in through ansible-core's ``patch_module_args``, the result is
the JSON the module prints before it exits."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args


@contextlib.contextmanager
def _fresh_warnings() -> Iterator[None]:
    """Warnings and deprecations are process-wide in module_utils: start each
    run with none, as a module process would."""
    with contextlib.ExitStack() as stack:
        for name in ("_global_warnings", "_global_deprecations"):
            table = getattr(ansible_warnings, name, None)
            if isinstance(table, dict):
                stack.enter_context(mock.patch.dict(table, clear=True))
        yield


class ModuleRunner:
    """``runner(main, check_mode=..., diff=..., **module_args) -> result dict``.
    ``result["failed"]`` is true when the module called fail_json."""

    def __init__(self, capsys: pytest.CaptureFixture[str]):
        self.capsys = capsys

    def __call__(
        self, main: Callable[[], None], check_mode: bool = False, diff: bool = False, **args: Any
    ) -> dict[str, Any]:
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        self.capsys.readouterr()
        with _fresh_warnings(), patch_module_args(args), pytest.raises(SystemExit) as exc:
            main()
        out = self.capsys.readouterr().out
        result: dict[str, Any] = json.loads(out)
        assert (exc.value.code != 0) == bool(result.get("failed")), result
        return result


def warnings(result: dict[str, Any]) -> list[str]:
    """The warning texts of a result (ansible-core 2.19 returns them as structured summaries)."""
    out = []
    for w in result.get("warnings", []):
        if isinstance(w, dict):
            w = w.get("event", w).get("msg", str(w))
        out.append(str(w))
    return out
