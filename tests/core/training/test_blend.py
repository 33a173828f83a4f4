"""core.training.blend: the fine-tuned weights blended with the start model's (WiSE-FT), once."""

from __future__ import annotations

import numpy as np
import pytest

from core.model.card import read_card
from core.training.blend import blend_weights
from core.training.finetune import FinetuneConfig, FinetuneError
from core.training.trainer import TrainConfig, train


def test_blend_weights_interpolates_float_arrays_and_refuses_other_architectures():
    start = [np.zeros((2, 2), np.float32), np.full(3, 4.0, np.float32), np.array([7], np.int64)]
    trained = [np.ones((2, 2), np.float32), np.full(3, 8.0, np.float32), np.array([9], np.int64)]
    out = blend_weights(start, trained, 0.25)
    np.testing.assert_allclose(out[0], 0.25)
    np.testing.assert_allclose(out[1], 5.0)
    assert out[2][0] == 9  # a counter is taken from the trained model, never interpolated
    assert all(np.array_equal(a, b) for a, b in zip(blend_weights(start, trained, 1.0), trained, strict=True))
    with pytest.raises(ValueError, match="not one architecture"):
        blend_weights(start, trained[:2], 0.5)
    with pytest.raises(ValueError, match="not one architecture"):
        blend_weights([np.zeros(2)], [np.zeros(3)], 0.5)


def test_a_run_started_from_a_model_ends_blended_with_it_once(tiny_dataset, tiny_base, tmp_path):
    """One epoch from the base: model.keras is base + 0.5 x (trained - base), where the trained weights
    are last.keras's (the only epoch is the best); the card says so; a resume does not blend again."""
    from core.model.io import load_model
    start = tiny_base / "liver" / "model.keras"
    cfg = TrainConfig(dataset=str(tiny_dataset), out=str(tmp_path / "run"), stage="liver", epochs=1, batch_size=8,
                      image_size=64, base_filters=8, depth=3, val_fraction=0.34, export_onnx=False,
                      steps_per_epoch=2, init_from=str(start), blend=0.5)
    r = train(cfg)
    assert r.status == "completed"
    base = load_model(start, compile=False).get_weights()
    trained = load_model(tmp_path / "run" / "last.keras", compile=False).get_weights()
    got = load_model(tmp_path / "run" / "model.keras", compile=False).get_weights()
    moved = [not np.allclose(t, b) for t, b in zip(trained, base, strict=True)]
    assert any(moved)
    for g, b, t in zip(got, base, trained, strict=True):
        np.testing.assert_allclose(g, b + 0.5 * (t - b), rtol=1e-5, atol=1e-6)
    card = read_card(tmp_path / "run")
    assert card["blend"] == 0.5 and card["blend_start"] == str(start)
    assert "threshold_search" in card  # the threshold was chosen on the blended model, after it
    train(cfg, resume=True)  # finished: nothing trains, and the blend is not applied twice
    again = load_model(tmp_path / "run" / "model.keras", compile=False).get_weights()
    assert all(np.array_equal(a, g) for a, g in zip(again, got, strict=True))


def test_blend_options_are_checked():
    with pytest.raises(Exception, match="blend must be in"):
        TrainConfig(dataset="d", out="o", blend=0.5)  # no start model to blend with
    with pytest.raises(Exception, match="blend must be in"):
        TrainConfig(dataset="d", out="o", init_from="m.keras", blend=0.0)
    with pytest.raises(FinetuneError, match="blend must be in"):
        FinetuneConfig("d", "default", "o", blend=1.5)
    assert FinetuneConfig("d", "default", "o").blend == 0.7
