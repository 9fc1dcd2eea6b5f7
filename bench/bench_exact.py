#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The exact <cpu>: the minimal form against the fully explicit one, on the evidence that decides the default.

Groups: the property test's (every model QEMU 7.2 and 10.0 and libvirt 9.0 and 11.3 all know; one host of each stack
with the union of the model's definitions, and the same with the second host lacking each feature the definitions
disagree on) and pairs of recorded hosts. For each form:

- size: features named and bytes of the element;
- exact where it was rendered for: judged on the stacks of its group (QEMU 7.2 and 10.0 under KVM, both maps);
- exact where it was NOT rendered for: rendered for a group whose hosts all run one stack, judged on the other -
  what a host upgraded without a new rendering gets (the upgrade check exists for that; this measures the margin);
- the time to render.

Needs /dev/kvm (the judges expand under KVM). Environment: none.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
# pylint: disable=wrong-import-position
from utils.source_tree import SOURCE_COLLECTIONS  # noqa: E402

sys.path.insert(0, SOURCE_COLLECTIONS)
from ansible.plugins.loader import init_plugin_loader  # noqa: E402

init_plugin_loader([SOURCE_COLLECTIONS])
from ansible_collections.cpucompat.cluster.plugins.module_utils.engine._baseline import baseline_of  # noqa: E402
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._fingerprint import kvm_usable  # noqa: E402
from ansible_collections.cpucompat.cluster.plugins.module_utils.render._libvirt import render  # noqa: E402
from utils import exact_groups, judges, stacks  # noqa: E402
from utils.recordings import facts_of  # noqa: E402

PAIRS = [("x86_64-xeon-gold-6130", "x86_64-xeon-platinum-9242"), ("x86_64-cooperlake", "x86_64-xeon-platinum-9242"),
         ("x86_64-xeon-e5-2650-v4", "x86_64-xeon-e5-2609-v3"), ("x86_64-core-i7-8700", "x86_64-xeon-e3-1245-v5"),
         ("x86_64-ice-lake-server", "x86_64-xeon-platinum-9242"), ("x86_64-epyc-7502", "x86_64-epyc-7601-ibpb"),
         ("x86_64-epyc-7502", "x86_64-ryzen-9-3900x"), ("x86_64-atom-p5362", "x86_64-xeon-e7540")]
FORMS = ("minimal", "explicit")


def groups(old: judges.QemuJudge, new: judges.QemuJudge) -> list[tuple[str, dict, dict, dict]]:
    """(name, the group on both stacks, the group on the system stack only, on the backports stack only)."""
    system, backports = stacks.by_name("system"), stacks.by_name("backports")
    out = []
    for model, lacking, host, weaker in exact_groups.cases(old):
        name = f"{model}{' without ' + lacking if lacking else ''}"
        both = {"a": exact_groups.synthetic(model, host, system, old), "b": exact_groups.synthetic(model, weaker, backports, new)}
        only_old = {"a": exact_groups.synthetic(model, host, system, old), "b": exact_groups.synthetic(model, weaker, system, old)}
        only_new = {"a": exact_groups.synthetic(model, host, backports, new), "b": exact_groups.synthetic(model, weaker, backports, new)}
        out.append((name, both, only_old, only_new))
    for a, b in PAIRS:
        out.append((f"{a}+{b}", {a: facts_of(a, "system"), b: facts_of(b, "backports")},
                    {a: facts_of(a, "system"), b: facts_of(b, "system")}, {a: facts_of(a, "backports"), b: facts_of(b, "backports")}))
    return out


def main() -> None:
    if not kvm_usable():
        raise SystemExit("bench_exact needs /dev/kvm: the judges expand CPU models under KVM")
    system, backports = stacks.by_name("system"), stacks.by_name("backports")
    maps = (system.cpu_map, backports.cpu_map)
    with judges.qemu(system) as old, judges.qemu(backports) as new:
        cases = groups(old, new)
        print(f"exact <cpu> benchmark: {len(cases)} groups (property-test groups and recorded pairs), both forms, judged by "
              f"QEMU {judges.ACCEL} 7.2 and 10.0 and libvirt {system.libvirt_version} and {backports.libvirt_version}")
        stats: dict[str, dict[str, list[float]]] = {f: {"features": [], "bytes": [], "seconds": [], "exact": [], "other": []} for f in FORMS}
        for _name, both, only_old, only_new in cases:
            guests = {key: baseline_of(group).guest for key, group in (("both", both), ("old", only_old), ("new", only_new))}
            for form in FORMS:
                start = time.perf_counter()
                cpu = render(guests["both"], form)
                stats[form]["seconds"].append(time.perf_counter() - start)
                stats[form]["features"].append(len(cpu.spec.features))
                stats[form]["bytes"].append(len(cpu.xml))
                stats[form]["exact"].append(not judges.verdict(cpu.spec, guests["both"].features, (old, new), maps))
                # rendered knowing one stack, judged on the other: a host upgraded without a new rendering
                crossed = []
                for rendered_for, judged_on, judge in (("old", backports.cpu_map, new), ("new", system.cpu_map, old)):
                    spec = render(guests[rendered_for], form).spec
                    crossed.append(not judges.verdict(spec, guests[rendered_for].features, (judge,), (judged_on,)))
                stats[form]["other"].append(all(crossed))
        for form in FORMS:
            s = stats[form]
            print(f"  {form:8s}: features named median {statistics.median(s['features']):5.0f} (max {max(s['features'])}), "
                  f"element median {statistics.median(s['bytes']):6.0f} B (max {max(s['bytes'])}), "
                  f"render median {statistics.median(s['seconds']) * 1000:5.2f} ms")
            print(f"            exact on the stacks it was rendered for: {sum(s['exact'])} of {len(s['exact'])}; "
                  f"exact on the stack it was not rendered for: {sum(s['other'])} of {len(s['other'])}")
        ratio = statistics.median(stats["explicit"]["bytes"]) / statistics.median(stats["minimal"]["bytes"])
        print(f"  explicit / minimal element size: {ratio:.1f}x")


if __name__ == "__main__":
    main()
