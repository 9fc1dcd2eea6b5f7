# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Options and notes of the actions that aggregate a group on the controller (cluster_cpu_facts, cpu_contract,
    cpu_upgrade_check); their argument spec is SHARED_SPEC in plugins/plugin_utils/_aggregate.py."""

    DOCUMENTATION = r"""
author:
  - cpucompat.cluster contributors (@cpucompat)
attributes:
  action:
    support: full
    description: Runs on the controller; no module runs on the hosts.
options:
  policy:
    description: What shapes the baseline, as the options of P(cpucompat.cluster.cpu_baseline#filter).
    type: dict
    default: {}
    suboptions:
      migratable_only:
        description: Keep only migratable features.
        type: bool
        default: true
      allow_deprecated:
        description: Allow models QEMU deprecates.
        type: bool
        default: false
      require_features:
        description: Features the group must keep; fails naming the hosts that lack them.
        type: list
        elements: str
        default: []
      min_model:
        description: A model every host must run.
        type: str
      exclude_features:
        description: Features to leave out although every host has them.
        type: list
        elements: str
        default: []
      vendor_neutral:
        description: Allow hosts of different vendors, on a vendor-neutral model.
        type: bool
        default: false
  form:
    description: The form of the libvirt C(<cpu>), as in P(cpucompat.cluster.libvirt_cpu_xml#filter).
    type: str
    default: minimal
    choices: [minimal, explicit]
  cpu_map:
    description:
      - Directory of a libvirt CPU map on the controller for hosts whose facts say nothing about libvirt (facts built by
        hand). Each probed host's facts carry the map its own libvirt reads, and that is the one used.
    type: path
  contract_dir:
    description:
      - The file store's folder on the controller, one C(<group>.json) per group (and a C(.<group>.lock) for writers).
      - Empty is C($XDG_DATA_HOME/cpucompat/contracts) (C(~/.local/share/cpucompat/contracts)), outside any inventory
        folder. A contract found only in C(cpucompat-contracts) beside the inventory (the default before 0.3.0) is read
        from there and moved into the store on the next write.
    type: str
    default: ""
  contract_store:
    description:
      - Where the contracts live. Every contract carries a generation; a write compares it with the one this run read, so
        two runs (two controllers, two AWX jobs) that change one group at once never overwrite each other - the later
        fails, naming the winner's generation, and writes nothing.
    type: dict
    default: {}
    suboptions:
      type:
        description:
          - V(file), a folder on the controller (O(contract_dir); writes hold a lock); V(redis), one key per group in a
            Redis server shared by the controllers (the compare-and-swap is one server-side script).
        type: str
        default: file
        choices: [file, redis]
      path:
        description: The file store's folder; overrides O(contract_dir).
        type: str
        default: ""
      connection:
        description:
          - The Redis server, as C(host:port[:db[:password]]) (the form of the C(community.general.redis) fact cache) or a
            C(redis://) URL. Empty is the fact cache's connection when the fact cache is Redis.
        type: str
        default: ""
      prefix:
        description: The prefix of the keys (C(<prefix><group>)).
        type: str
        default: cpucompat_contract_
  report_dir:
    type: str
    description:
      - Directory on the controller where C(<report>.json) (the report), C(<report>.md) and C(<report>.html) are
        written, atomically, also in check mode since they change nothing on the hosts. Files whose content is the same
        are left alone. V(contract) (M(cpucompat.cluster.cpu_contract)) also writes the baseline report of each group
        (C(<group>/baseline.*) for several).
      - Empty is a folder C(reports) beside the first inventory source that is a file or folder, else in the current
        directory; omitted, no report file is written.
  return_report:
    description:
      - Return the whole report as C(report). With V(false), the result has C(markdown) (a short rendering, the
        per-host table cut at 20 rows) and C(verdict) instead; the whole report is in the files of O(report_dir).
      - A 1,000-host report in the result costs Ansible about 2 seconds (sent from the worker process, copied for
        C(register), walked by the callbacks); the collection's baseline role passes V(false).
    type: bool
    default: true
notes:
  - Facts are read where ansible-core 2.19 keeps them (the fact cache and this run's registered results), not through
    C(hostvars), whose per-host cost grows with the inventory; with another ansible-core layout it falls back to
    C(hostvars). Any fact cache plugin works (C(jsonfile), C(community.general.redis), ...); large fleets probe in
    C(--limit) slices into one shared cache and aggregate once (the collection's C(docs/fleet.md)).
  - The view follows the report schema C(cpucompat.report/1) documented in the collection's C(docs/reports.md).
  - This is an action plugin; it runs on the controller only.
"""
