"""Patient-level splits of a dataset: which patients train, validate and test (never by slice)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..runtime.errors import DatasetError


@dataclass(frozen=True)
class Split:
    """Which patients train, validate and test (never split by slice)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...] = ()
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def split_cases(case_ids: Sequence[str], val_fraction: float = 0.2, test_fraction: float = 0.0,
                seed: int = 0) -> Split:
    """Seeded patient-level split. At least one validation patient when there are two or more."""
    ids = sorted(case_ids)
    if len(ids) < 2:
        raise DatasetError(f"need at least 2 patients to split into training and validation, got {len(ids)}")
    order = list(np.random.default_rng(seed).permutation(len(ids)))
    n_val = max(1, int(round(len(ids) * val_fraction)))
    n_test = int(round(len(ids) * test_fraction))
    if n_val + n_test >= len(ids):
        raise DatasetError(f"{len(ids)} patients are too few for {n_val} validation and {n_test} test patients")
    pick = [ids[i] for i in order]
    return Split(tuple(sorted(pick[n_val + n_test:])), tuple(sorted(pick[:n_val])),
                 tuple(sorted(pick[n_val:n_val + n_test])), seed)
