"""RunnerCache: models loaded once per (path, stage), runners kept by models, engine, device, batch
size and file versions, the most recently used few, and a runner set only for its own models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.inference.runner_cache import RunnerCache
from core.model.io import load_seg_model
from tests.core.models import threshold_model


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return threshold_model(root / "liver", "liver", 60), threshold_model(root / "tumor", "tumor", 400)


def test_kept_until_something_it_depends_on_changes(paths):
    cache = RunnerCache()
    liver = cache.model(paths[0], "liver")
    assert cache.model(paths[0], "liver") is liver and cache.model(liver, "liver") is liver
    runners = cache.get(*paths, engine="keras", device="cpu")
    assert runners.liver_model is liver and cache.get(*paths, engine="keras", device="cpu") is runners
    assert cache.get(*paths, engine="keras", device="cpu", batch_size=2) is not runners
    assert cache.get(liver, paths[1], engine="keras", device="cpu") is runners  # the loaded model: the same
    card = Path(paths[0]) / "model.json"
    os.utime(card, ns=(card.stat().st_mtime_ns + 10**9,) * 2)  # a changed model file: new runners
    again = cache.get(*paths, engine="keras", device="cpu")
    assert again is not runners and again.liver_model is liver
    cache.clear()
    assert len(cache) == 0 and cache.model(paths[0], "liver") is not liver


def test_runners_run_only_their_own_model_objects_and_only_a_few_are_kept(paths):
    cache = RunnerCache(keep=2)
    first = cache.get(paths[0], None, engine="keras", device="cpu")
    other = load_seg_model(paths[0], "liver", lazy=True)  # the same file, another object
    second = cache.get(other, None, engine="keras", device="cpu")
    assert second is not first and second.liver_model is other and second.tumour is None
    for b in (1, 2, 3):
        cache.get(paths[0], None, engine="keras", device="cpu", batch_size=b)
    assert len(cache) == 2
