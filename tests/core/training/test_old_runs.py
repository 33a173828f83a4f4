"""Run folders written by the code with a flat ``core/`` still read and load with the packages grouped by stage.

``tests/data/run-v0.1.0`` is a tiny liver run (32 px, 4 filters, depth 2, one epoch) written by the
code of commit caf413b, the last one with the flat ``core/`` (``last.keras`` and the TensorBoard logs
left out). Nothing in a run folder or a model card names a module, so moving modules never breaks one.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from core.catalog.library import describe
from core.inference.cascade import segment
from core.model import card as runs
from core.model.io import load_seg_model
from core.synthetic.phantom import make_phantom
from core.training.trainer import TrainConfig

OLD_RUN = Path(__file__).resolve().parents[2] / "data" / "run-v0.1.0"


def test_an_old_run_folder_reads_as_before(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    cfg = TrainConfig.from_dict(runs.read_config(run))
    assert (cfg.stage, cfg.image_size, cfg.base_filters, cfg.depth, cfg.epochs) == ("liver", 32, 4, 2, 1)
    assert runs.read_split(run)["val"] == ["p2"]
    assert runs.read_state(run)["epoch"] == 1
    assert [r["epoch"] for r in runs.read_metrics(run) if r["type"] == "epoch"] == [1]
    card = runs.find_card(run / runs.MODEL)
    assert card == runs.read_card(run) and card["stage"] == "liver" and card["input_size"] == 32
    entry = describe(run / runs.MODEL, "user")
    assert entry is not None and entry.stage == "liver" and entry.recipe == "window25d"


def test_config_json_keeps_the_key_names_runs_were_written_with():
    """The field tumour_positive_share is config.json's "tumor_positive_share", as in runs written before."""
    written = runs.read_config(OLD_RUN)
    cfg = TrainConfig.from_dict({**written, "tumor_positive_share": 0.25})
    assert cfg.tumour_positive_share == 0.25
    again = cfg.to_dict()
    assert again["tumor_positive_share"] == 0.25 and "tumour_positive_share" not in again
    assert set(written) <= set(again) and TrainConfig.from_dict(again) == cfg


def test_an_old_run_folders_model_loads_and_segments(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    m = load_seg_model(run, "liver")
    assert m.pre.size == 32 and m.threshold == runs.read_card(run)["threshold"]
    assert m.model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0).shape == (1, 32, 32, 1)
    ph = make_phantom(5, 8, 64)
    seg = segment(SimpleNamespace(hu=ph.hu, spacing=ph.spacing), m, engine="keras")
    assert seg.label.shape == ph.hu.shape and seg.label.dtype == np.uint8
