# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin in front of the cpucompat.cluster.cpu_probe module (documentation in plugins/modules/cpu_probe.py).

With ``cached_fingerprint``, the host's current fingerprint is first read by one
small standard-library script (``module_utils/_fingerprint.py``, sent with
``python -c``): no module is packaged or transferred and, above all, Ansible's
per-module start-up cost (hundreds of milliseconds of CPU per host) is not paid.
When it matches, the cached facts stand and the module does not run. In every
other case (no cache, mismatch, socket mode, no known interpreter, any error of
the script) the module runs, and it checks the fingerprint again itself: the
quick path can only save work, never change an answer.
"""

from __future__ import annotations

import inspect
import json
import shlex
from typing import Any

from ansible import constants as C
from ansible.plugins.action import ActionBase

from ansible_collections.cpucompat.cluster.plugins.module_utils import _fingerprint
from ansible_collections.cpucompat.cluster.plugins.module_utils._common_args import CPU_PROBE_ARGS
from ansible_collections.cpucompat.cluster.plugins.module_utils._facts import SCHEMA_VERSION

_AUTO = ("auto", "auto_legacy", "auto_silent", "auto_legacy_silent")


class ActionModule(ActionBase):
    """Confirm cached facts cheaply; otherwise run the cpu_probe module."""

    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=CPU_PROBE_ARGS)
        cached = args.get("cached_fingerprint")
        if cached and not args.get("qmp_socket") and not self._task.async_val:
            now = self._target_fingerprint(args, task_vars)
            if now is not None and now == cached:
                result.update(changed=False, probed=False, fingerprint=now)
                return result
        result.update(self._execute_module(module_name="cpucompat.cluster.cpu_probe", module_args=self._task.args,
                                           task_vars=task_vars))
        return result

    def _interpreter(self, task_vars: dict[str, Any]) -> str | None:
        """The Python the module would run under, when known without discovery."""
        configured = C.config.get_config_value("INTERPRETER_PYTHON", variables=task_vars)
        configured = self._templar.template(configured) if configured else configured
        if configured and str(configured) not in _AUTO:
            return str(configured)
        discovered = (task_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
        return str(discovered) if discovered else None

    def _target_fingerprint(self, args: dict[str, Any], task_vars: dict[str, Any]) -> str | None:
        """The fingerprint of the host as it is now, or None when the quick path cannot tell."""
        interpreter = self._interpreter(task_vars)
        if not interpreter:
            return None
        request = {"qemu_binary": args.get("qemu_binary"), "accel": args.get("accel"), "schema_version": SCHEMA_VERSION}
        code = _fingerprint.script(inspect.getsource(_fingerprint), request)
        # -I -S: no environment variables, user or site directories; the script needs the standard library only.
        cmd = f"{shlex.quote(interpreter)} -I -S -c {shlex.quote(code)}"
        env = self._compute_environment_string()
        if env:
            cmd = f"{env} {cmd}"
        res = self._low_level_execute_command(cmd, sudoable=True)
        if res.get("rc") != 0:
            return None
        try:
            reply = json.loads(res.get("stdout", "").strip().splitlines()[-1])
        except (ValueError, IndexError):
            return None
        value = reply.get("fingerprint") if isinstance(reply, dict) else None
        return value if isinstance(value, str) else None
