# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Model scoring: which named CPU model is closest to a feature set. Private to the collection.

Below the engine and the renderers alike: the engine chooses the group's model with it, and a renderer that cannot
write that model's name (a libvirt that predates versioned names) chooses among the others with the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._features import MODEL_VERSION_RE


def model_rank(model: str, feats: frozenset[str]) -> tuple[int, int, str]:
    """Larger models first, then the higher QEMU version, then the name: the tie-break of every model choice."""
    version = MODEL_VERSION_RE.search(model)
    return (len(feats), int(version.group(1)) if version else 0, model)


def best_model(candidates: Mapping[str, frozenset[str]], wanted: frozenset[str], soft: frozenset[str] = frozenset()) -> str | None:
    """The model needing the fewest features listed beyond it (required or disabled); the largest on a tie.

    ``soft`` features of a model need no disabling (QEMU drops them itself).
    """
    return next(iter(ranked(candidates, wanted, soft)), None)


def ranked(candidates: Mapping[str, frozenset[str]], wanted: frozenset[str], soft: frozenset[str] = frozenset()) -> list[str]:
    """Every candidate, best first (the order of :func:`best_model`)."""
    def key(model: str) -> tuple[int, tuple[int, int, str]]:
        feats = candidates[model]
        return (-(len(wanted - feats) + len(feats - wanted - soft)), model_rank(model, feats))

    return sorted(candidates, key=key, reverse=True)
