# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A door per verb (issue 27): cluster_cpu_facts only reads, cpu_contract writes the contract store, cpu_upgrade_check
judges an upgrade; each takes only its verbs and options, and the writing verbs given to cluster_cpu_facts still run,
through the new action, with a deprecation warning naming it."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleActionFail

from utils.recordings import facts_of

GOLD, PLATINUM, BROADWELL = "x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242", "x86_64-xeon-e5-2650-v4"
HOSTS = ("gold", "platinum", "bdw")


def _task_vars() -> dict:
    hosts = {name: {"ansible_facts": {"cpucompat": facts_of(rec)}} for name, rec in zip(HOSTS, (GOLD, PLATINUM, BROADWELL))}
    return {"hostvars": hosts, "ansible_play_hosts_all": list(hosts), "ansible_play_hosts": list(hosts),
            "groups": {"all": list(hosts), "pool": ["gold", "platinum"]}}


@pytest.fixture
def deprecations(monkeypatch) -> list[dict]:
    """What the actions pass to Display.deprecated."""
    from ansible.utils.display import Display  # pylint: disable=import-outside-toplevel

    seen: list[dict] = []
    monkeypatch.setattr(Display, "deprecated", lambda self, msg, *args, **kw: seen.append({"msg": msg, **kw}))
    return seen


@pytest.mark.parametrize("action, args, message", [
    ("cluster_cpu_facts", {"report": "nonsense"}, "report must be one of: baseline, expansion, migration"),
    ("cpu_contract", {"report": "baseline", "group": "pool"}, "report must be one of: contract, plan, rebuild"),
    ("cpu_contract", {"report": "upgrade", "group": "pool"}, "report must be one of: contract, plan, rebuild"),
    ("cpu_upgrade_check", {"report": "upgrade", "group": "pool", "new_stack": ["bdw"]}, "Unsupported parameters.*report"),
], ids=["facts-unknown", "contract-baseline", "contract-upgrade", "upgrade-no-report"])
def test_each_action_takes_only_its_verbs(action_plugin, tmp_path, deprecations, action, args, message) -> None:
    with pytest.raises(AnsibleActionFail, match=message):
        action_plugin(action, {**args, "contract_dir": str(tmp_path)}).run(task_vars=_task_vars())
    assert not deprecations


@pytest.mark.parametrize("action, args, option", [
    ("cluster_cpu_facts", {"group": "pool", "pin": True}, "pin"),
    ("cluster_cpu_facts", {"report": "expansion", "hosts": ["gold"], "change": {"action": "raise"}}, "change"),
    ("cluster_cpu_facts", {"groups": ["pool"]}, "groups"),
    ("cpu_contract", {"group": "pool", "candidates": ["bdw"]}, "candidates"),
    ("cpu_contract", {"group": "pool", "new_stack": ["bdw"]}, "new_stack"),
    ("cpu_upgrade_check", {"group": "pool", "new_stack": ["bdw"], "pin": True}, "pin"),
    ("cpu_upgrade_check", {"group": "pool", "new_stack": ["bdw"], "allow_partial": True}, "allow_partial"),
    # the deprecated door takes the options of the action it leads to, not cluster_cpu_facts' own
    ("cluster_cpu_facts", {"report": "contract", "group": "pool", "hosts": ["gold"]}, "hosts"),
], ids=["facts-pin", "facts-change", "facts-groups", "contract-candidates", "contract-new-stack", "upgrade-pin",
        "upgrade-partial", "deprecated-contract-hosts"])
def test_each_action_takes_only_the_options_its_verbs_read(action_plugin, tmp_path, deprecations, action, args, option) -> None:
    with pytest.raises(AnsibleActionFail, match=rf"Unsupported parameters.*\b{option}\b"):
        action_plugin(action, {**args, "contract_dir": str(tmp_path)}).run(task_vars=_task_vars())


def test_the_writing_verbs_given_to_cluster_cpu_facts_warn_and_still_work(action_plugin, tmp_path, deprecations) -> None:
    store = {"contract_dir": str(tmp_path / "c")}
    old = action_plugin("cluster_cpu_facts", {**store, "report": "contract", "group": "pool"}).run(task_vars=_task_vars())
    assert old["changed"] is True and old["contract_files"] == [str(tmp_path / "c" / "pool.json")]
    assert old["report"]["kind"] == "contract" and old["contracts"]["pool"]["xml"]
    [warned] = deprecations
    assert "cpucompat.cluster.cpu_contract" in warned["msg"] and "report=contract" in warned["msg"]
    assert warned["version"] == "0.4.0" and warned["collection_name"] == "cpucompat.cluster"
    new = action_plugin("cpu_contract", {**store, "group": "pool"}).run(task_vars=_task_vars())
    assert new["changed"] is False and new["report"]["groups"]["pool"]["admission"]["ok"] is True
    assert new["contracts"]["pool"]["xml"] == old["contracts"]["pool"]["xml"], "the same contract, whichever door pinned it"
    assert len(deprecations) == 1, "the new action warns about nothing"
    plan = action_plugin("cluster_cpu_facts", {**store, "report": "plan", "group": "pool", "change": {"action": "raise"}}).run(
        task_vars=_task_vars())
    assert plan["report"]["kind"] == "plan" and plan["report"]["verdict"]["ok"] is True
    assert "cpucompat.cluster.cpu_contract" in deprecations[-1]["msg"] and "report=plan" in deprecations[-1]["msg"]
    upgrade = action_plugin("cluster_cpu_facts", {**store, "report": "upgrade", "groups": ["pool"], "new_stack": ["bdw"]}).run(
        task_vars=_task_vars())
    assert upgrade["report"]["kind"] == "upgrade" and "bdw" in upgrade["new_stack"]
    assert "cpucompat.cluster.cpu_upgrade_check" in deprecations[-1]["msg"] and deprecations[-1]["version"] == "0.4.0"
    assert len(deprecations) == 3


def test_the_upgrade_check_has_its_own_door(action_plugin, tmp_path, deprecations) -> None:
    store = {"contract_dir": str(tmp_path / "c")}
    action_plugin("cpu_contract", {**store, "group": "pool"}).run(task_vars=_task_vars())
    result = action_plugin("cpu_upgrade_check", {**store, "group": "pool", "new_stack": ["bdw"], "report_dir": str(tmp_path / "r")}).run(
        task_vars=_task_vars())
    section = result["report"]["groups"]["pool"]
    assert result["report"]["kind"] == "upgrade" and result["changed"] is False and "contract_files" not in result
    assert section["reasons"], "Broadwell cannot run the Skylake contract of pool: the upgrade would hurt it"
    written = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert written == ["new-stack.json", "pool", "upgrade.html", "upgrade.json", "upgrade.md"]
    with pytest.raises(AnsibleActionFail, match="cpu_upgrade_check: new_stack is needed"):
        action_plugin("cpu_upgrade_check", {**store, "group": "pool"}).run(task_vars=_task_vars())
    with pytest.raises(AnsibleActionFail, match=r"cpu_upgrade_check \(upgrade\): needs group or groups"):
        action_plugin("cpu_upgrade_check", {**store, "new_stack": ["bdw"]}).run(task_vars=_task_vars())
    assert not deprecations


def test_the_read_verbs_do_not_warn_and_write_no_contract(action_plugin, tmp_path, deprecations) -> None:
    store = {"contract_dir": str(tmp_path / "c")}
    for args in ({"group": "pool"}, {"report": "expansion", "hosts": ["gold", "platinum"], "candidates": ["bdw"]},
                 {"report": "migration", "hosts": ["gold", "bdw"], "sources": ["gold"]}):
        result = action_plugin("cluster_cpu_facts", {**store, **args}).run(task_vars=_task_vars())
        assert result["changed"] is False and "contract_files" not in result
    assert not deprecations and not (tmp_path / "c").exists()


def _options_of(doc_options: dict) -> dict:
    """Each documented option's type, default, choices and suboptions, as an argument spec says them."""
    out = {}
    for name, option in doc_options.items():
        spec = {k: option[k] for k in ("type", "default", "choices", "elements", "required") if k in option}
        spec.setdefault("type", "str")
        if "suboptions" in option:
            spec["options"] = _options_of(option["suboptions"])
        out[name] = spec
    return out


def _spec_of(spec: dict) -> dict:
    return {name: {**{k: v for k, v in option.items() if k != "options"}, "type": option.get("type", "str"),
                   **({"options": _spec_of(option["options"])} if "options" in option else {})}
            for name, option in spec.items()}


@pytest.mark.parametrize("action", ["cluster_cpu_facts", "cpu_contract", "cpu_upgrade_check"])
def test_each_action_documents_exactly_its_argument_spec(action_plugin, action) -> None:
    """The documentation (the stub module and its fragments, cpucompat.cluster.aggregate among them) and the
    argument spec of the action name the same options, with the same types, defaults and choices."""
    from ansible.plugins.loader import fragment_loader, module_loader  # pylint: disable=import-outside-toplevel
    from ansible.utils.plugin_docs import get_docstring  # pylint: disable=import-outside-toplevel

    path = module_loader.find_plugin(f"cpucompat.cluster.{action}")
    doc = get_docstring(path, fragment_loader, collection_name="cpucompat.cluster")[0]
    assert _options_of(doc["options"]) == _spec_of(action_plugin(action, {}).ARGUMENT_SPEC)
    assert doc["attributes"]["check_mode"]["support"] == "full"
    described = doc["attributes"]["check_mode"]["description"]
    writes = "contract store" in (described if isinstance(described, str) else " ".join(described))
    assert writes == (action == "cpu_contract"), "only cpu_contract says it writes the contract store"
