#!/usr/bin/env python3
# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Regenerate plugins/module_utils/cpu/_cpuid_names.py from QEMU's source: the feature_word_info[] table of target/i386/cpu.c.

Each CPUID entry of the table (``.type = CPUID_FEATURE_WORD``) names the bits of one CPUID word: ``.feat_names`` (32
slots, NULL where QEMU has no name) and ``.cpuid`` (leaf ``.eax``, subleaf ``.ecx`` when ``.needs_ecx``, register
``.reg``). The word's key is ``"<leaf>.<subleaf>.<register>"`` in hex (subleaf ``0x0`` without ``.needs_ecx``), as QEMU's
vCPU property ``feature-words`` reports the word. MSR entries (``.type = MSR_FEATURE_WORD``) are not CPUID words and
``feature-words`` leaves them out; they are written separately, keyed ``"msr.<index>"``.

The table is the union of the sources given: for each bit, the newest release's name; an older release's different name
for the same bit is kept in OLDER_NAMES. Names are canonicalised as the facts spell them (``_features.canonical_name``).
Macros used as leaf or MSR index (``KVM_CPUID_FEATURES``, ``MSR_IA32_ARCH_CAPABILITIES``) are resolved from the
source's own headers.

Usage: tools/gen_cpuid_names.py SOURCE [SOURCE ...] [--output FILE]

SOURCE is one of:
  a QEMU release tarball (qemu-X.Y.Z.tar.xz, or Debian's qemu_X.Y+dfsg.orig.tar.xz): read in place, its sha256 recorded;
  an unpacked QEMU source tree (a directory with target/i386/cpu.c);
  GITDIR@REV: a git directory (bare or not) and a tag or commit, e.g. ~/src/qemu/.git@v10.0.0.

The shipped table was made from Debian's source packages of the two QEMUs the suite runs (the system's 7.2 and the
backports' 10.0; ``apt-get source --download-only`` from bookworm and bookworm-backports, with a private apt
configuration as tools/backports.sh uses):

  tools/gen_cpuid_names.py qemu_7.2+dfsg.orig.tar.xz qemu_10.0.2+ds.orig.tar.xz
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import textwrap
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
# pylint: disable=wrong-import-position
from utils.source_tree import SOURCE_COLLECTIONS  # noqa: E402

sys.path.insert(0, SOURCE_COLLECTIONS)
from ansible_collections.cpucompat.cluster.plugins.module_utils.cpu import _features  # noqa: E402

OUTPUT = os.path.join(ROOT, "plugins", "module_utils", "cpu", "_cpuid_names.py")
# The files the table and its macros live in, relative to the top of QEMU's tree.
FILES = ("VERSION", "target/i386/cpu.c", "target/i386/cpu.h", "include/standard-headers/asm-x86/kvm_para.h")
REGISTERS = ("EAX", "EBX", "ECX", "EDX")
WIDTH = 120


class SourceError(Exception):
    """A source cannot be read or its table cannot be parsed."""


# --- reading a source --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """The files of one QEMU source (FILES), its version and where it came from."""

    version: str
    origin: str
    files: dict[str, str]


def _from_tarball(path: str) -> Source:
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    found: dict[str, str] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            rel = member.name.split("/", 1)[1] if "/" in member.name else ""
            if rel in FILES and member.isfile():
                data = tar.extractfile(member)
                assert data is not None
                found[rel] = data.read().decode("utf-8")
    name = os.path.basename(path)
    debian = ", Debian's repack of the release tarball" if re.match(r"qemu_.*\.orig\.tar\.", name) else ""
    return _source(found, f"{name}{debian} (sha256 {digest})", path)


def _from_tree(path: str) -> Source:
    found = {}
    for rel in FILES:
        if os.path.isfile(os.path.join(path, rel)):
            with open(os.path.join(path, rel), encoding="utf-8") as fh:
                found[rel] = fh.read()
    return _source(found, f"source tree {os.path.abspath(path)}", path)


def _from_git(gitdir: str, rev: str) -> Source:
    def git(*args: str) -> str:
        done = subprocess.run(["git", f"--git-dir={gitdir}", *args], capture_output=True, text=True, check=False)
        if done.returncode:
            raise SourceError(f"git {' '.join(args)} in {gitdir}: {done.stderr.strip()}")
        return done.stdout

    commit = git("rev-parse", f"{rev}^{{commit}}").strip()
    found = {rel: git("show", f"{commit}:{rel}") for rel in FILES}
    return _source(found, f"git {rev} (commit {commit})", f"{gitdir}@{rev}")


def _source(found: dict[str, str], origin: str, where: str) -> Source:
    missing = [rel for rel in FILES if rel not in found]
    if missing:
        raise SourceError(f"{where}: no {', '.join(missing)}")
    return Source(found["VERSION"].strip(), origin, found)


def read_source(arg: str) -> Source:
    if os.path.isdir(arg):
        return _from_tree(arg)
    if os.path.isfile(arg):
        return _from_tarball(arg)
    if "@" in arg:
        gitdir, rev = arg.rsplit("@", 1)
        return _from_git(gitdir, rev)
    raise SourceError(f"{arg}: not a tarball, a source tree or GITDIR@REV")


# --- parsing the table -------------------------------------------------------------------------------------------------

@dataclass
class Word:
    """One entry of feature_word_info[]: its key and its names (bit -> QEMU's spelling)."""

    feat: str
    key: str
    names: dict[int, str] = field(default_factory=dict)


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", " ", text, flags=re.S))


def _braced(text: str, start: int) -> tuple[str, int]:
    """The text inside the brace at ``start`` and the index after its closing brace."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i], i + 1
    raise SourceError(f"unbalanced braces from offset {start}")


def _block(body: str, name: str) -> str | None:
    match = re.search(rf"\.{name}\s*=\s*\{{", body)
    return _braced(body, match.end() - 1)[0] if match else None


def defines_of(texts: list[str]) -> dict[str, str]:
    """``#define NAME VALUE`` of C sources, the first definition of a name winning."""
    out: dict[str, str] = {}
    for text in texts:
        for match in re.finditer(r"^#define\s+(\w+)\s+([^\n]+)$", _strip_comments(text), flags=re.M):
            out.setdefault(match.group(1), match.group(2).strip())
    return out


def _number(value: str, defines: dict[str, str], where: str) -> int:
    seen = []
    while value in defines and value not in seen:
        seen.append(value)
        value = defines[value].strip("() ")
    match = re.fullmatch(r"(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*", value.strip())
    if not match:
        raise SourceError(f"{where}: cannot resolve {value!r} to a number")
    return int(match.group(1), 0)


def _feat_names(block: str, where: str) -> dict[int, str]:
    names: dict[int, str] = {}
    index = 0
    for item in (i.strip() for i in block.split(",")):
        if not item:
            continue
        designated = re.fullmatch(r"\[(\d+)\]\s*=\s*(.+)", item, flags=re.S)
        if designated:
            index, item = int(designated.group(1)), designated.group(2).strip()
        if item != "NULL":
            strings = re.findall(r'"([^"]*)"', item)
            if not strings or re.sub(r'"[^"]*"', "", item).strip():
                raise SourceError(f"{where}: cannot read feature name {item!r}")
            name = _features.canonical_name("x86_64", "".join(strings))
            names[index] = _features.validate_feature_name(name, where)
        index += 1
    return names


def _fields(block: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"\.(\w+)\s*=\s*([^,}]+)", block)}


def _word(feat: str, body: str, defines: dict[str, str], where: str) -> Word | None:
    """The entry's key and names; None for an entry that is neither a CPUID nor an MSR word."""
    kind_match = re.search(r"\.type\s*=\s*(\w+)", body)
    kind = kind_match.group(1) if kind_match else None
    names_block = _block(body, "feat_names")
    names = _feat_names(names_block, where) if names_block is not None else {}
    if kind == "CPUID_FEATURE_WORD":
        cpuid = _fields(_block(body, "cpuid") or "")
        reg = cpuid.get("reg", "")
        if not reg.startswith("R_") or reg[2:] not in REGISTERS:
            raise SourceError(f"{where}: register {reg!r} is not one of R_EAX..R_EDX")
        leaf = _number(cpuid["eax"], defines, where)
        subleaf = _number(cpuid.get("ecx", "0"), defines, where) if cpuid.get("needs_ecx") == "true" else 0
        if max(names, default=0) > 31:
            raise SourceError(f"{where}: a CPUID word names bit {max(names)}")
        return Word(feat, f"{leaf:#x}.{subleaf:#x}.{reg[2:]}", names)
    if kind == "MSR_FEATURE_WORD":
        index = _number(_fields(_block(body, "msr") or "")["index"], defines, where)
        return Word(feat, f"msr.{index:#x}", names)
    return None


def parse_words(cpu_c: str, defines: dict[str, str], where: str) -> list[Word]:
    """The CPUID and MSR words of the feature_word_info[] table in the text of target/i386/cpu.c."""
    text = _strip_comments(cpu_c)
    start = re.search(r"FeatureWordInfo\s+feature_word_info\s*\[\s*FEATURE_WORDS\s*\]\s*=\s*\{", text)
    if not start:
        raise SourceError(f"{where}: no feature_word_info[] in target/i386/cpu.c")
    table, _ = _braced(text, start.end() - 1)
    words: list[Word] = []
    pos = 0
    while entry := re.compile(r"\[\s*(FEAT_\w+)\s*\]\s*=\s*\{").search(table, pos):
        body, pos = _braced(table, entry.end() - 1)
        word = _word(entry.group(1), body, defines, f"{where} {entry.group(1)}")
        if word is not None:
            words.append(word)
    return words


def parse_table(src: Source) -> list[Word]:
    where = f"QEMU {src.version}"
    words = parse_words(src.files["target/i386/cpu.c"], defines_of([src.files[rel] for rel in FILES[1:]]), where)
    keys = [w.key for w in words]
    if len(set(keys)) != len(keys) or len(words) < 20:
        raise SourceError(f"{where}: {len(words)} words, keys not unique or table not read: {keys}")
    return words


# --- the union and the module ------------------------------------------------------------------------------------------

def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


@dataclass
class Union:
    """The union of the releases' tables: newest name per bit, older differing names, where each word came from."""

    bits: dict[str, dict[int, str]] = field(default_factory=dict)
    feats: dict[str, str] = field(default_factory=dict)
    older: dict[str, dict[int, str]] = field(default_factory=dict)
    since: dict[str, str] = field(default_factory=dict)


def union(tables: list[tuple[Source, list[Word]]]) -> Union:
    """``tables`` newest first."""
    out = Union()
    for src, words in tables:
        for word in words:
            out.feats.setdefault(word.key, word.feat)
            out.since[word.key] = src.version
            names = out.bits.setdefault(word.key, {})
            for bit, name in word.names.items():
                current = names.setdefault(bit, name)
                if current != name:
                    out.older.setdefault(word.key, {})[bit] = name
    oldest = tables[-1][0].version
    out.since = {k: v for k, v in out.since.items() if v != oldest}
    return out


def _sort_key(key: str) -> tuple[int, int, int]:
    leaf, subleaf, reg = key.split(".")
    return int(leaf, 16), int(subleaf, 16), REGISTERS.index(reg)


def _wrap(head: str, items: list[str], tail: str) -> list[str]:
    """``head`` + the comma-separated ``items`` + ``tail``, wrapped at WIDTH under the first item."""
    lines, line = [], head
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if len(line) + len(piece) + 1 > WIDTH and line != head:
            lines.append(line.rstrip())
            line = " " * len(head)
        line += piece + " "
    return lines + [line.rstrip() + tail]


def _dict_lines(name: str, rows: dict[str, dict[int, str]], comments: dict[str, str]) -> list[str]:
    """``name = {key: {bit: name, ...}, ...}``, one entry per key, with its comment (QEMU's FEAT_ name)."""
    if not rows:
        return [f"{name}: dict[str, dict[int, str]] = {{}}"]
    lines = [f"{name}: dict[str, dict[int, str]] = {{"]
    for key, bits in rows.items():
        entry = _wrap(f"    {key!r}: {{", [f"{bit}: {bits[bit]!r}" for bit in sorted(bits)], "},")
        comment = f"  # {comments[key]}" if key in comments else ""
        if len(entry[-1] + comment) <= WIDTH:
            entry[-1] += comment
        else:
            entry.insert(0, f"    #{comment[3:]}")
        lines += entry
    return lines + ["}"]


def render(tables: list[tuple[Source, list[Word]]], merged: Union) -> str:
    cpuid = {k: merged.bits[k] for k in sorted((k for k in merged.bits if not k.startswith("msr.")), key=_sort_key)}
    msr = {k: merged.bits[k] for k in sorted((k for k in merged.bits if k.startswith("msr.")), key=lambda k: int(k[4:], 16))}
    sources = [line for src, _ in tables for line in textwrap.wrap(f"- QEMU {src.version}: {src.origin}", WIDTH,
                                                                      subsequent_indent="  ", break_long_words=False)]
    named = sum(len(v) for v in cpuid.values())
    header = [
        "# Copyright (c) 2026 cpucompat.cluster contributors",
        "# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)",
        "# SPDX-License-Identifier: GPL-3.0-or-later",
        '"""QEMU\'s names for the bits of the x86 CPUID feature words. Private to the collection.',
        "",
        "Generated by tools/gen_cpuid_names.py; do not edit. The names are QEMU's: target/i386/cpu.c, the",
        "feature_word_info[] table, of QEMU (https://gitlab.com/qemu-project/qemu, mirrored at github.com/qemu/qemu;",
        "QEMU is GPL-2.0-or-later, target/i386/cpu.c LGPL-2.1-or-later), shipped here with attribution. Sources:",
        "",
        *sources,
        "",
        *textwrap.wrap(
            "CPUID_BITS: word key (``leaf.subleaf.register`` in hex, as ``_cpuid.word_key`` writes it) -> bit -> "
            f"QEMU's canonical name (``_features.canonical_name``); {len(cpuid)} words, {named} named bits. Every "
            "CPUID word QEMU reports in ``feature-words`` has a key, even one with no named bit. Union of the sources: "
            "the newest name of a bit; OLDER_NAMES holds an older release's different name for it. WORD_SINCE: for a "
            "word the oldest source lacks, the oldest source that has it (not the release that added it).", WIDTH,
            break_on_hyphens=False),
        "",
        *textwrap.wrap(
            "MSR_BITS: QEMU's MSR feature words (not CPUID words, not in ``feature-words``), keyed ``msr.<index>``, "
            "bits numbered as QEMU numbers its feature word (for the VMX capability MSRs QEMU builds the MSR value "
            "from these bits: they are not always the MSR's own bit positions).", WIDTH, break_on_hyphens=False),
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    body = [
        *_dict_lines("CPUID_BITS", cpuid, merged.feats),
        "",
        *_dict_lines("OLDER_NAMES", merged.older, {}),
        "",
        *_wrap("WORD_SINCE: dict[str, str] = {", [f"{k!r}: {merged.since[k]!r}" for k in cpuid if k in merged.since], "}"),
        "",
        *_dict_lines("MSR_BITS", msr, merged.feats),
    ]
    return "\n".join(header + body) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", metavar="SOURCE")
    parser.add_argument("--output", default=OUTPUT)
    args = parser.parse_args()
    try:
        sources = sorted((read_source(a) for a in args.sources), key=lambda s: _version_key(s.version), reverse=True)
        tables = [(src, parse_table(src)) for src in sources]
    except SourceError as exc:
        sys.exit(f"gen_cpuid_names: {exc}")
    merged = union(tables)
    for src, words in tables:
        cpuid = [w for w in words if not w.key.startswith("msr.")]
        print(f"QEMU {src.version}: {len(cpuid)} CPUID words, {sum(len(w.names) for w in cpuid)} named bits; "
              f"{len(words) - len(cpuid)} MSR words ({src.origin})")
    for key, bits in merged.older.items():
        for bit, old in bits.items():
            print(f"renamed: {key} bit {bit}: {old} -> {merged.bits[key][bit]}")
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write(render(tables, merged))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
