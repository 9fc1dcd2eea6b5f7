# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An aarch64 group's guest CPU: ``host-passthrough`` over a pinned host identity. Private to the collection.

Under KVM on arm64 only ``host`` (and ``max``) run: QEMU has no named model a guest could keep across hosts, so a
guest that migrates sees the new host's CPU. Every peer (Nova, KubeVirt, Proxmox, RHEL) says "identical hosts only";
this module says what identical means, field by field, and what a difference does to a migrating guest. The identity is
the facts' ``arm`` block (``probe/_armhost``) less what differs per CPU instance (how many CPUs were read, the
``kvm-*`` tunables): two hosts are one group's when their identities are equal.

Pure and typed: :func:`identity_of` reads facts, :func:`differences` compares two identities, :func:`digest` and
:func:`label` name one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import FactsError
from ..cpu._guest import identity_digest
from ..probe._armhost import Midr

# (field, what the refusal calls it), in the order a refusal names them.
FIELDS: tuple[tuple[str, str], ...] = (
    ("midr", "MIDR_EL1"), ("revidr", "REVIDR_EL1"), ("features", "ID registers (Features)"), ("sve_lengths", "SVE vector lengths"),
    ("pmu", "PMU"), ("pauth", "pointer authentication"), ("page_size", "page size"), ("kernel", "kernel"), ("qemu", "QEMU"),
    ("machine", "machine type"), ("firmware", "firmware"),
)


def identity_of(facts: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The identity of an aarch64 host from its facts; FactsError naming the host when its facts cannot say it."""
    arm = facts.get("arm") if isinstance(facts, Mapping) else None
    if not isinstance(arm, Mapping):
        raise FactsError(f"{where}: its aarch64 facts have no 'arm' block (probed by an older collection); probe it again")
    ident = arm.get("identity")
    if not isinstance(ident, Mapping) or not ident.get("midr"):
        raise FactsError(f"{where}: its facts do not show the host's arm64 identity (no MIDR_EL1 read under the probe's "
                         "host_root); probe it on the host itself, or with host_root set to a tree of the host's /sys and /proc")
    qemu = facts.get("qemu")
    out = {
        "midr": _strings(ident.get("midr")), "revidr": _strings(ident.get("revidr")), "features": _strings(ident.get("features")),
        "sve_lengths": sorted(int(v) for v in arm.get("sve_lengths") or () if isinstance(v, int) and not isinstance(v, bool)),
        "pmu": arm.get("pmu") if isinstance(arm.get("pmu"), bool) else None,
        "pauth": arm.get("pauth") if isinstance(arm.get("pauth"), bool) else None,
        "page_size": ident.get("page_size") if isinstance(ident.get("page_size"), int) else None,
        "kernel": _text(ident.get("kernel")), "qemu": _text(qemu.get("version")) if isinstance(qemu, Mapping) else None,
        "machine": _text(arm.get("machine")), "firmware": _text(ident.get("firmware")),
    }
    return out


def _strings(value: Any) -> list[str]:
    return sorted({str(v) for v in value}) if isinstance(value, (list, tuple)) else []


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def describe(identity: Mapping[str, Any]) -> str:
    """One line for people: the CPU(s), page size, kernel, QEMU and machine type."""
    cpus = ", ".join(_midr_name(m) for m in identity.get("midr") or []) or "unknown CPU"
    page = identity.get("page_size")
    return (f"{cpus}; {page // 1024 if isinstance(page, int) else '?'} KiB pages; kernel {identity.get('kernel')}; "
            f"QEMU {identity.get('qemu')} {identity.get('machine')}; firmware {identity.get('firmware')}")


def _midr(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None


def _midr_name(text: str) -> str:
    value = _midr(text)
    return text if value is None else Midr(value).describe()


def _cpu_of(midrs: Sequence[str]) -> set[tuple[int, int]]:
    values = [_midr(m) for m in midrs]
    return {(Midr(v).implementer, Midr(v).part) for v in values if v is not None}


@dataclass(frozen=True)
class Difference:
    """One field in which a host differs from the pinned identity, and what that does to a migrating guest."""

    field: str
    what: str  # the field as a refusal names it ("MIDR part", "kernel"...)
    pinned: Any
    host: Any
    consequence: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "what": self.what, "pinned": self.pinned, "host": self.host, "consequence": self.consequence}

    def text(self) -> str:
        return f"{self.what} {_show(self.host)} instead of {_show(self.pinned)}: {self.consequence}"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]" if len(value) <= 6 else f"[{len(value)} values]"
    return str(value)


def _kernel_version(release: Any) -> tuple[int, int] | None:
    head = str(release or "").split("-", maxsplit=1)[0].split("+", maxsplit=1)[0].split(".")
    try:
        return int(head[0]), int(head[1])
    except (IndexError, ValueError):
        return None


def _kernel_consequence(pinned: Any, host: Any) -> str:
    a, b = _kernel_version(pinned), _kernel_version(host)
    crossed = [v for v in ((6, 13), (6, 16)) if a and b and min(a, b) < v <= max(a, b)]
    base = ("KVM's list of the vCPU registers that migrate changes between kernel releases; the destination's QEMU "
            "then refuses the incoming guest (\"cpreg_vmstate_array_len\" mismatch)")
    if crossed:
        return base + f": Linux {' and '.join(f'{v[0]}.{v[1]}' for v in crossed)} changed that list between these two"
    return base


def _consequence(name: str, pinned: Any, host: Any) -> tuple[str, str]:
    """(what the refusal calls the field, what the difference does to a migrating guest)."""
    if name == "midr":
        if _cpu_of(pinned) != _cpu_of(host):
            return "MIDR part", ("a different CPU: with host-passthrough the guest sees the destination's CPU, whose ID "
                                 "registers KVM does not let it take along (its MIDR and feature registers change under the "
                                 "running guest, which chose its errata workarounds and instructions at boot)")
        return "MIDR revision", ("another variant or revision of the CPU: other errata, so the guest's kernel may run "
                                 "without a workaround the destination needs (or with one it no longer needs)")
    if name == "revidr":
        return "REVIDR_EL1", "other implementation-defined revision bits (errata fixed on one host and not the other)"
    if name == "features":
        lost = sorted(set(pinned or []) - set(host or []))
        gained = sorted(set(host or []) - set(pinned or []))
        detail = "; ".join(p for p in (f"lacks {', '.join(lost)}" if lost else "", f"adds {', '.join(gained)}" if gained else "") if p)
        return "ID registers (Features)", (f"the ID registers its kernel shows differ ({detail}): a guest that uses an "
                                           "instruction the destination lacks dies with an undefined instruction")
    if name == "sve_lengths":
        return "SVE vector lengths", ("the guest's SVE vector length is not available on the destination: QEMU refuses the "
                                      "incoming guest (the vector lengths are part of the vCPU's configuration)")
    if name in ("pmu", "pauth"):
        what = {"pmu": "PMU", "pauth": "pointer authentication"}[name]
        return what, f"the destination's KVM gives the vCPU {'no ' if not host else ''}{what}: the incoming guest is refused"
    if name == "page_size":
        return "page size", ("the hosts' kernels use different page sizes (4, 16 or 64 KiB): guest memory is mapped with "
                             "another granule, and migration is supported between hosts of one page size only")
    if name == "kernel":
        return "kernel", _kernel_consequence(pinned, host)
    if name == "qemu":
        return "QEMU", ("another QEMU: what its 'host' CPU gives a guest, and its migration stream, may differ; "
                        "pin one QEMU version per group")
    if name == "machine":
        return "machine type", ("another virt-X.Y machine type: a guest of one cannot be restored by a QEMU that "
                                "does not define it, and the machine's defaults differ")
    return "firmware", ("other firmware: it sets the SMCCC workarounds (Spectre mitigations) and the ID registers the "
                        "kernel sees, so the guest's discovery no longer holds")


def differences(pinned: Mapping[str, Any], host: Mapping[str, Any]) -> list[Difference]:
    """Each field in which ``host`` differs from ``pinned``, in FIELDS' order, with its consequence."""
    out = []
    for name, _label in FIELDS:
        a, b = pinned.get(name), host.get(name)
        if a != b:
            what, consequence = _consequence(name, a, b)
            out.append(Difference(name, what, a, b, consequence))
    return out


def grouped(identities: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Hosts by identity digest (each list sorted)."""
    out: dict[str, list[str]] = {}
    for host, ident in identities.items():
        out.setdefault(identity_digest(ident), []).append(host)
    return {d: sorted(hosts) for d, hosts in sorted(out.items())}


def group_identity(identities: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, list[Difference]]]:
    """The group's identity when every host has the same (None otherwise), and each host that differs from the
    identity most hosts share (ties: the first host's by name), with how."""
    groups = grouped(identities)
    if not groups:
        return None, {}
    majority = max(groups.values(), key=lambda hosts: (len(hosts), [-ord(c) for c in hosts[0]]))
    ref = identities[majority[0]]
    diffs = {h: differences(ref, i) for h, i in sorted(identities.items()) if h not in majority}
    return (dict(ref) if len(groups) == 1 else None), diffs
