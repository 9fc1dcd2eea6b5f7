# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""libvirt's x86 CPU map as a typed value, and the one QEMU<->libvirt feature vocabulary. Private to the collection.

Pure: the map arrives as the text of its files (``probe/_libvirt.py`` reads them on a host or on the controller) or as
the compact form the facts keep (:meth:`CpuMap.to_facts`). It is read the way libvirt reads it (``src/cpu/cpu_x86.c``,
9.0 and 11.3):

- a model's definition is its ancestor's (``<model name='…'/>``, minus the ancestor's removed features) plus its own
  ``<feature>`` elements, except those marked ``removed='yes'`` (libvirt adds them to every guest as explicit
  ``disable``, or, from 11.3 on an incoming migration, ``require``) and ``added='yes'`` (11.3: features libvirt's
  check='full' ignores unless the ``<cpu>`` names them);
- libvirt spells features its own way (``lahf_lm`` for QEMU's ``lahf-lm``); its ``<alias source='qemu'>`` entries are
  the translation, and the map's feature list is everything a ``<cpu>`` read by that libvirt may name.

Only the x86 map has model definitions that libvirt checks; for s390x and aarch64 libvirt passes QEMU's names through.
"""

from __future__ import annotations

import base64
import binascii
import json
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import CpuMapError
from . import _libvirt_maps_data
from ._features import FEATURE_NAME_RE, canonical_name

DEFAULT_CPU_MAP = "/usr/share/libvirt/cpu_map"
MAP_ARCHES = ("x86_64",)
LIBVIRT_VENDOR = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}
# Maps older than libvirt's <alias source='qemu'> entries: the one QEMU name not found by the dash/dot rule.
_QEMU_TO_LIBVIRT = {"pclmulqdq": "pclmuldq"}
CPU_MAP_FACT_FORMAT = 2


@dataclass(frozen=True)
class CpuMap:
    """One libvirt's x86 CPU map: its identity, its feature vocabulary and its model definitions (libvirt names)."""

    features: frozenset[str]
    models: Mapping[str, frozenset[str]]
    vendors: Mapping[str, str | None]
    qemu_aliases: Mapping[str, str] = field(default_factory=dict)  # QEMU spelling -> libvirt feature (<alias source='qemu'>)
    removed: Mapping[str, frozenset[str]] = field(default_factory=dict)  # model -> its removed='yes' features
    added: Mapping[str, frozenset[str]] = field(default_factory=dict)  # model -> its added='yes' features (11.3)
    digest: str | None = None  # sha256 of the map's files, as the probe computes it (probe/_fingerprint.py)
    version: str | None = None  # the libvirt that reads it
    origin: str | None = None  # where it was read (a path, or "facts of <host>")
    _to_libvirt: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)
    _to_qemu: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        """How reports name this map: libvirt's version and the start of its digest."""
        digest = (self.digest or "").removeprefix("sha256:")[:12]
        return f"libvirt {self.version or '?'} map {digest or self.origin or '?'}"

    def libvirt_name(self, qemu_name: str) -> str | None:
        """libvirt's spelling of a QEMU feature, or None when this map has no name for it."""
        if qemu_name not in self._to_libvirt:
            found = None
            spellings = (self.qemu_aliases.get(qemu_name), _QEMU_TO_LIBVIRT.get(qemu_name), qemu_name,
                         qemu_name.replace("-", "_"), qemu_name.replace(".", "_"))
            for cand in spellings:
                if cand and cand in self.features:
                    found = cand
                    break
            self._to_libvirt[qemu_name] = found
        return self._to_libvirt[qemu_name]

    def libvirt_names(self, qemu_names: Iterable[str]) -> tuple[frozenset[str], list[str]]:
        """(libvirt names of the features this map knows, QEMU names of those it does not)."""
        known: set[str] = set()
        unknown: list[str] = []
        for name in qemu_names:
            lv = self.libvirt_name(name)
            if lv is None:
                unknown.append(name)
            else:
                known.add(lv)
        return frozenset(known), sorted(unknown)

    def qemu_name(self, libvirt_name: str) -> str:
        """QEMU's canonical spelling of one of this map's features (its ``<alias source='qemu'>``, else the name)."""
        if not self._to_qemu and self.features:
            reverse: dict[str, str] = {}
            for alias, lv in sorted(self.qemu_aliases.items()):
                reverse.setdefault(lv, canonical_name("x86_64", alias))
            self._to_qemu.update({lv: reverse.get(lv) or canonical_name("x86_64", lv) for lv in self.features})
        return self._to_qemu.get(libvirt_name) or canonical_name("x86_64", libvirt_name)

    def qemu_names(self, libvirt_names: Iterable[str]) -> frozenset[str]:
        return frozenset(self.qemu_name(n) for n in libvirt_names)

    @property
    def qemu_vocabulary(self) -> frozenset[str]:
        """Every feature this map can name, in QEMU's names."""
        if "vocabulary" not in self._cache:
            self._cache["vocabulary"] = self.qemu_names(self.features)
        return self._cache["vocabulary"]

    def definition(self, model: str) -> frozenset[str] | None:
        """A model's features as this libvirt checks them (QEMU names); None when the map does not know the model."""
        key = f"model:{model}"
        if key not in self._cache:
            feats = self.models.get(model)
            self._cache[key] = None if feats is None else self.qemu_names(feats)
        return self._cache[key]

    def knows(self, qemu_name: str) -> bool:
        return self.libvirt_name(qemu_name) is not None

    # ------------------------------------------------------------------ the compact form kept in the facts
    def to_facts(self) -> dict[str, object]:
        """The map as facts keep it: ``format`` and ``digest``, and ``data`` (:meth:`encode_data`) only when this
        collection does not ship the map (``_libvirt_maps_data``): a map it knows is named by its digest alone."""
        if "facts" not in self._cache:
            out: dict[str, object] = {"format": CPU_MAP_FACT_FORMAT, "digest": self.digest}
            if not is_shipped(self.digest):
                out["data"] = self.encode_data()
            self._cache["facts"] = out
        return dict(self._cache["facts"])

    def encode_data(self) -> str:
        """The map compressed: base64 of the zlib-compressed JSON of the vocabulary as one string, each model as a bit
        mask over it (hexadecimal), the models' vendors, removed and added features, and the QEMU aliases. A whole map
        is 3 KiB (libvirt 9.0) to 6 KiB (11.3) this way; hosts sharing a digest share one decoded map on the controller.
        """
        vocab = sorted(self.features)
        bit = {name: i for i, name in enumerate(vocab)}

        def mask(names: frozenset[str]) -> str:
            value = 0
            for name in names:
                value |= 1 << bit[name]
            return format(value, "x")

        by_vendor: dict[str, list[str]] = {}
        for model in sorted(self.models):
            by_vendor.setdefault(self.vendors.get(model) or "", []).append(model)
        inner = {
            "features": " ".join(vocab),
            "qemu_aliases": " ".join(f"{q}={lv}" for q, lv in sorted(self.qemu_aliases.items())),
            "vendors": {vendor: " ".join(names) for vendor, names in sorted(by_vendor.items())},
            "models": {m: mask(f) for m, f in sorted(self.models.items())},
            "removed": {m: mask(f) for m, f in sorted(self.removed.items()) if f},
            "added": {m: mask(f) for m, f in sorted(self.added.items()) if f},
        }
        blob = zlib.compress(json.dumps(inner, separators=(",", ":"), sort_keys=True).encode(), 9)
        return base64.b64encode(blob).decode("ascii")

    @classmethod
    def from_facts(cls, data: object, version: str | None, where: str) -> CpuMap:
        """The map a host's facts carry (:meth:`to_facts`); every name is validated before it can reach XML.

        A map named by its digest alone is one this collection ships; a digest it does not ship is an error that says
        to re-probe the host with this collection (the facts came from a collection that knew more maps).
        """
        if not isinstance(data, Mapping) or data.get("format") != CPU_MAP_FACT_FORMAT:
            raise CpuMapError(f"{where}: libvirt.cpu_map is not a CPU map of format {CPU_MAP_FACT_FORMAT}; re-probe the host")
        digest = str(data.get("digest") or "") or None
        if data.get("data") is None:
            if not is_shipped(digest):
                raise CpuMapError(f"{where}: its facts name libvirt CPU map {digest or '(no digest)'} by digest only, and this "
                                  f"collection does not ship that map; re-probe the host with this collection so that "
                                  f"its facts carry the map itself")
            data = {"format": CPU_MAP_FACT_FORMAT, "digest": digest, "data": _libvirt_maps_data.MAPS[str(digest)]["data"]}
        key = (str(data.get("data")), str(digest), version)
        if key not in _DECODED:
            if len(_DECODED) > 32:
                _DECODED.clear()
            _DECODED[key] = cls._decode(data, version, where)
        return _DECODED[key]

    @classmethod
    def shipped(cls, digest: str, version: str | None, origin: str) -> CpuMap:
        """The shipped map of ``digest`` (see :func:`is_shipped`), decoded only when something reads its content: a
        probe that only names it in the facts neither parses nor compresses it."""
        if not is_shipped(digest):
            raise CpuMapError(f"{origin}: libvirt CPU map {digest} is not one this collection ships")
        return _ShippedCpuMap(digest, version, origin)

    @classmethod
    def _decode(cls, data: Mapping[str, Any], version: str | None, where: str) -> CpuMap:
        try:
            inner = _inflate(str(data["data"]))
            vocab = str(inner["features"]).split()
            aliases = dict(pair.split("=", 1) for pair in str(inner.get("qemu_aliases") or "").split())

            def names(value: object) -> frozenset[str]:
                number = int(str(value), 16)
                if number >> len(vocab):
                    raise ValueError("a mask names more features than the vocabulary has")
                return frozenset(name for i, name in enumerate(vocab) if number >> i & 1)

            models = {str(m): names(v) for m, v in dict(inner["models"]).items()}
            vendors: dict[str, str | None] = {}
            for vendor, listed in dict(inner.get("vendors") or {}).items():
                vendors.update(dict.fromkeys(str(listed).split(), str(vendor) or None))
            removed = {str(m): names(v) for m, v in dict(inner.get("removed") or {}).items()}
            added = {str(m): names(v) for m, v in dict(inner.get("added") or {}).items()}
        except (KeyError, TypeError, ValueError, zlib.error, binascii.Error) as exc:
            raise CpuMapError(f"{where}: libvirt.cpu_map is malformed ({type(exc).__name__}: {exc}); re-probe the host") from None
        for name in (*vocab, *models, *(v for v in vendors.values() if v)):
            if not FEATURE_NAME_RE.match(name):
                raise CpuMapError(f"{where}: libvirt.cpu_map: {name!r} is not a valid CPU model or feature name")
        return cls(frozenset(vocab), models, vendors, aliases, removed, added, str(data.get("digest") or "") or None, version, where)


def is_shipped(digest: object) -> bool:
    """Whether this collection ships the libvirt CPU map of ``digest`` (``_libvirt_maps_data``, by digest)."""
    return isinstance(digest, str) and digest in _libvirt_maps_data.MAPS


class _ShippedCpuMap(CpuMap):
    """A shipped map known by its digest: its content is decoded from the shipped data the first time it is read."""

    def __init__(self, digest: str, version: str | None, origin: str) -> None:  # pylint: disable=super-init-not-called
        for name, value in (("digest", digest), ("version", version), ("origin", origin), ("_to_libvirt", {}),
                            ("_to_qemu", {}), ("_cache", {})):
            object.__setattr__(self, name, value)

    def _content(self) -> CpuMap:
        if "content" not in self._cache:
            self._cache["content"] = CpuMap.from_facts({"format": CPU_MAP_FACT_FORMAT, "digest": self.digest}, self.version,
                                                       self.origin or "a shipped libvirt CPU map")
        return self._cache["content"]

    features = property(lambda self: self._content().features)
    models = property(lambda self: self._content().models)
    vendors = property(lambda self: self._content().vendors)
    qemu_aliases = property(lambda self: self._content().qemu_aliases)
    removed = property(lambda self: self._content().removed)
    added = property(lambda self: self._content().added)


_DECODED: dict[tuple[str, str, str | None], CpuMap] = {}  # maps decoded in this process: a fleet shares a few
_MAX_MAP_BYTES = 1 << 20  # a libvirt map is tens of KiB once decompressed: more is not a map


def _inflate(text: str) -> Mapping[str, Any]:
    decompressor = zlib.decompressobj()
    raw = decompressor.decompress(base64.b64decode(text.encode("ascii"), validate=True), _MAX_MAP_BYTES)
    if decompressor.unconsumed_tail:
        raise ValueError(f"the map is larger than {_MAX_MAP_BYTES} bytes once decompressed")
    inner = json.loads(raw)
    if not isinstance(inner, Mapping):
        raise ValueError("the map is not a JSON object")
    return inner


def require_map_arch(arch: str, what: str) -> None:
    """Fail clearly where a path needs libvirt's CPU map and the architecture has none we can use."""
    if arch not in MAP_ARCHES:
        raise CpuMapError(f"{what} is implemented for x86_64 only (it needs libvirt's x86 CPU map); "
                          f"this input is {arch}")


def parse_cpu_map(files: Mapping[str, bytes], origin: str, digest: str | None = None, version: str | None = None) -> CpuMap:
    """libvirt's x86 map from the text of its ``x86_*.xml`` files (file name -> content)."""
    feats: set[str] = set()
    aliases: dict[str, str] = {}
    vendor_ids: dict[str, str] = {}
    raw: dict[str, ET.Element] = {}
    for name in sorted(files):
        if not name.startswith("x86_") or not name.endswith(".xml"):
            continue
        try:
            root = ET.fromstring(files[name])
        except ET.ParseError as exc:
            raise CpuMapError(f"libvirt CPU map file {origin}/{name} is not well-formed: {exc}") from exc
        for elem in _top_level(root):
            if elem.tag == "feature" and elem.get("name"):
                feats.add(elem.get("name", ""))
                aliases.update((a.get("name", ""), elem.get("name", "")) for a in elem.iter("alias") if a.get("source") == "qemu")
            elif elem.tag == "vendor" and elem.get("name") and elem.get("string"):
                vendor_ids[elem.get("name", "")] = elem.get("string", "")
            elif elem.tag == "model" and elem.get("name") and len(elem):
                raw[elem.get("name", "")] = elem
    if not raw:
        raise CpuMapError(f"libvirt's CPU map at {origin} defines no x86 model (is it a CPU map directory?)")
    resolved: dict[str, _Model] = {}
    for model in raw:
        _resolve(model, raw, resolved, feats, 0, origin)
    return CpuMap(frozenset(feats), {m: r.features for m, r in resolved.items()}, {m: r.vendor for m, r in resolved.items()},
                  aliases, {m: r.removed for m, r in resolved.items() if r.removed},
                  {m: r.added for m, r in resolved.items() if r.added}, digest, version, origin)


def _top_level(root: ET.Element) -> list[ET.Element]:
    """The definitions of one map file: children of its ``<cpus>`` root (or of an ``<arch>`` inside it)."""
    out: list[ET.Element] = []
    for elem in root:
        out.extend(list(elem) if elem.tag == "arch" else [elem])
    return out


@dataclass(frozen=True)
class _Model:
    features: frozenset[str]
    vendor: str | None
    removed: frozenset[str]
    added: frozenset[str]


def _resolve(model: str, raw: Mapping[str, ET.Element], done: dict[str, _Model], vocab: set[str], depth: int,
             origin: str) -> _Model:
    """One model as libvirt's x86ModelParse builds it (ancestor, own features, removed and added ones)."""
    if model in done:
        return done[model]
    if depth > 20 or model not in raw:
        raise CpuMapError(f"libvirt CPU map {origin}: model {model!r} is missing or its ancestry loops")
    out: set[str] = set()
    removed: set[str] = set()
    added: set[str] = set()
    vendor = None
    for child in raw[model]:
        if child.tag == "model":
            ancestor = _resolve(child.get("name", ""), raw, done, vocab, depth + 1, origin)
            out |= ancestor.features - ancestor.removed
            vendor = vendor or ancestor.vendor
        elif child.tag == "vendor":
            vendor = child.get("name")
        elif child.tag == "feature":
            name = child.get("name", "")
            if name not in vocab:
                raise CpuMapError(f"libvirt CPU map {origin}: feature {name} of model {model} is not defined")
            if child.get("removed") == "yes":
                removed.add(name)
            elif child.get("added") == "yes":
                added.add(name)
            else:
                out.add(name)
    done[model] = _Model(frozenset(out), vendor, frozenset(removed), frozenset(added))
    return done[model]


class MapRegistry:
    """Which libvirt CPU map serves which host: the one registry of the collection.

    A host's facts carry the map its libvirt reads (version, digest, vocabulary, the definitions of the models its QEMU
    runs); hosts sharing a digest share one parsed :class:`CpuMap`. A host without libvirt has no map (None), and
    nothing libvirt-specific is asked of it. ``fallback`` serves hosts whose facts say nothing about libvirt at all
    (a CPU definition handed to a filter without facts); the controller's own map is never assumed otherwise.
    """

    def __init__(self, fallback: CpuMap | Callable[[], CpuMap] | None = None) -> None:
        self._fallback = fallback
        self._by_digest: dict[tuple[str | None, str | None, str], CpuMap] = {}

    @property
    def fallback(self) -> CpuMap | None:
        """The map for facts that say nothing about libvirt; read when first needed (its errors then name it)."""
        if callable(self._fallback):
            self._fallback = self._fallback()
        return self._fallback

    def from_facts(self, host: str, facts: Mapping[str, object]) -> CpuMap | None:
        """The map of host ``host`` from its facts (None: no libvirt there); malformed data names the host."""
        libvirt = facts.get("libvirt")
        if not isinstance(libvirt, Mapping):
            return self.fallback if "libvirt" not in facts else None
        data = libvirt.get("cpu_map")
        if data is None:
            return None
        version = libvirt.get("version") if isinstance(libvirt.get("version"), str) else None
        digest = data.get("digest") if isinstance(data, Mapping) else None
        key = (str(digest) if digest else None, version, "" if digest else host)
        if key not in self._by_digest:
            self._by_digest[key] = CpuMap.from_facts(data, version, f"host {host}")
        return self._by_digest[key]

    def maps(self) -> list[CpuMap]:
        """Every distinct map seen so far."""
        return list(self._by_digest.values())
