# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nova's start-up CPU check, asked of a compute host's libvirt before nova.conf says it. Private to the collection.

At start-up (``LibvirtDriver.init_host``), Nova's libvirt driver with ``cpu_mode = custom`` checks every model of
``cpu_models``: it looks the model up case-insensitively among ``getCPUModelNames(<host arch>)`` (and refuses the
configuration when libvirt does not know it), then, when ``virt_type`` is ``kvm``, builds the guest ``<cpu>`` it would
give an instance - ``mode='custom' match='exact'``, the model as libvirt spells it, every extra flag lower-cased
(``+f``/``f`` require, ``-f`` disable), features sorted by name - and refuses to start unless
``compareHypervisorCPU`` says the host's hypervisor runs it (identical or superset; an error other than "not supported"
refuses too). :func:`check` makes the same calls, so that nova-compute is never restarted on a CPU its host refuses.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import LibvirtError
from ..render._nova import NovaCpu

RESULTS = {-1: "error", 0: "incompatible", 1: "identical", 2: "superset"}
NO_SUPPORT = 3  # VIR_ERR_NO_SUPPORT: Nova goes on without the comparison
MODEL_ARCHES = ("i686", "x86_64", "ppc64", "ppc64le", "ppc")  # where Nova maps model names through libvirt's list


@dataclass(frozen=True)
class ModelCheck:
    """One model of ``cpu_models`` as Nova checks it on this host."""

    model: str  # as configured
    libvirt_model: str | None  # as libvirt spells it (None: libvirt does not know it)
    xml: str | None
    result: str  # identical | superset | incompatible | error | unknown model | not compared
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.result in ("identical", "superset", "not compared")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "libvirt_model": self.libvirt_model, "xml": self.xml, "result": self.result,
                "ok": self.ok, "message": self.message}


def nova_flags(flags: Iterable[str]) -> dict[str, bool]:
    """``cpu_model_extra_flags`` as Nova reads them: lower-cased, ``-f`` disable, ``+f`` or ``f`` require."""
    out: dict[str, bool] = {}
    for raw in {str(f).strip().lower() for f in flags if str(f).strip()}:
        if raw.startswith("-"):
            out[raw.lstrip("-")] = False
        else:
            out[raw.lstrip("+")] = True
    return out


def guest_xml(model: str, flags: dict[str, bool]) -> str:
    """The ``<cpu>`` Nova builds (LibvirtConfigGuestCPU), as text."""
    return NovaCpu((model,), flags).xml(model)


def host_arch(conn: Any) -> str:
    """The host CPU's architecture from libvirt's capabilities (as Nova's ``get_cpu_model_names`` reads it)."""
    try:
        caps = ET.fromstring(conn.getCapabilities())
    except ET.ParseError as exc:
        raise LibvirtError(f"libvirt's capabilities are not XML: {exc}") from exc
    arch = caps.findtext("host/cpu/arch")
    if not arch:
        raise LibvirtError("libvirt's capabilities name no host CPU architecture")
    return arch.strip()


def check(conn: Any, models: Sequence[str], extra_flags: Sequence[str], virt_type: str = "kvm",
          libvirt_error: type[Exception] = Exception) -> list[ModelCheck]:
    """Nova's checks of every model with all the extra flags, on the host behind ``conn`` (a libvirt connection);
    ``libvirt_error``: libvirt's exception class (the caller imports libvirt)."""
    arch = host_arch(conn)
    names = {str(n).lower(): str(n) for n in conn.getCPUModelNames(arch, 0)} if arch in MODEL_ARCHES else None
    flags = nova_flags(extra_flags)
    out = []
    for model in models:
        spelled = model if names is None else names.get(model.lower())
        if spelled is None:
            out.append(ModelCheck(model, None, None, "unknown model",
                                  f"Configured CPU model: {model} is not correct, or your host CPU arch does not support "
                                  f"this model (libvirt's {arch} models do not include it)"))
            continue
        xml = guest_xml(spelled, flags)
        if virt_type != "kvm":
            out.append(ModelCheck(model, spelled, xml, "not compared", f"virt_type {virt_type}: Nova compares only for kvm"))
            continue
        out.append(_compare(conn, model, spelled, xml, extra_flags, libvirt_error))
    return out


def _compare(conn: Any, model: str, spelled: str, xml: str, extra_flags: Sequence[str],
             libvirt_error: type[Exception]) -> ModelCheck:
    refused = f"Configured CPU model: {model} and CPU Flags {list(extra_flags)} are not compatible with host CPU"
    try:
        code = conn.compareHypervisorCPU(None, None, None, None, xml, 0)
    except libvirt_error as exc:  # pylint: disable=broad-exception-caught
        if getattr(exc, "get_error_code", lambda: None)() == NO_SUPPORT:
            return ModelCheck(model, spelled, xml, "not compared", f"libvirt cannot compare CPUs here: {str(exc).strip()}")
        return ModelCheck(model, spelled, xml, "error", f"{refused}: libvirt: {str(exc).strip()}")
    result = RESULTS.get(code, f"unknown result {code}")
    if code is None or code <= 0:
        return ModelCheck(model, spelled, xml, result, f"{refused}: libvirt says {result}")
    return ModelCheck(model, spelled, xml, result)
