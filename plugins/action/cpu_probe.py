# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin in front of the cpucompat.cluster.cpu_probe module (documentation in plugins/modules/cpu_probe.py).

The one place that decides whether cached facts still describe a host, in this order:

1. ``force``: probe.
2. ``max_age`` (with ``reuse_cached``): cached facts of this schema probed less than ``max_age`` seconds ago stand;
   nothing runs on the host.
3. the fingerprint script: the host's current fingerprint is read by one small standard-library script
   (``module_utils/probe/_fingerprint.py``, sent with ``python -c``): no module is packaged or transferred and Ansible's
   per-module start-up cost (hundreds of milliseconds of CPU per host) is not paid. When it equals the cached
   fingerprint, the cached facts stand.
4. the module, given the cached fingerprint when the script could not tell (socket mode, no known interpreter, any
   error of the script): it computes the fingerprint once, returns at once when it matches, and otherwise probes with
   what it computed.

The result says which step decided (``freshness``: ``max_age``, ``fingerprint`` or ``probed``).
"""

from __future__ import annotations

import inspect
import json
import shlex
import time
from collections.abc import Mapping
from typing import Any

from ansible import constants as C
from ansible.plugins.action import ActionBase

from ansible_collections.cpucompat.cluster.plugins.module_utils.probe import _fingerprint
from ansible_collections.cpucompat.cluster.plugins.module_utils._common_args import CPU_PROBE_ARGS
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._facts import SCHEMA_VERSION
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._freshness import fresh_by_age

_AUTO = ("auto", "auto_legacy", "auto_silent", "auto_legacy_silent")


class ActionModule(ActionBase):
    """Confirm cached facts cheaply; otherwise run the cpu_probe module."""

    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _validation, args = self.validate_argument_spec(argument_spec=CPU_PROBE_ARGS)
        cached = self._cached_facts(args, task_vars)
        fingerprint = args.get("cached_fingerprint") or (cached or {}).get("fingerprint")
        if not args["force"]:
            kept = self._still_fresh(args, cached, fingerprint, task_vars)
            if kept is not None:
                result.update(changed=False, probed=False, freshness=kept, fingerprint=fingerprint)
                return result
        module_args = {**self._task.args, "cached_fingerprint": None if args["force"] else fingerprint}
        result.update(self._execute_module(module_name="cpucompat.cluster.cpu_probe", module_args=module_args, task_vars=task_vars))
        return result

    @staticmethod
    def _cached_facts(args: dict[str, Any], task_vars: dict[str, Any]) -> Mapping[str, Any] | None:
        """This host's cached cpucompat facts of the current schema, read as stored (never templated)."""
        if not args["reuse_cached"]:
            return None
        facts = (task_vars.get("ansible_facts") or {}).get("cpucompat")
        if isinstance(facts, Mapping) and facts.get("schema_version") == SCHEMA_VERSION:
            return facts
        return None

    def _still_fresh(self, args: dict[str, Any], cached: Mapping[str, Any] | None, fingerprint: str | None,
                     task_vars: dict[str, Any]) -> str | None:
        """Which step keeps the cached facts (max_age, fingerprint), or None when the module must run."""
        if fresh_by_age(cached, args["max_age"], time.time()):
            return "max_age"
        if fingerprint and not args.get("qmp_socket") and not self._task.async_val:
            if self._target_fingerprint(args, task_vars) == fingerprint:
                return "fingerprint"
        return None

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
        request = {"qemu_binary": args.get("qemu_binary"), "accel": args.get("accel"), "schema_version": SCHEMA_VERSION,
                   "machine": args.get("machine"), "cpu_map": args.get("cpu_map")}
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
