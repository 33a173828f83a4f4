"""core.training.finetune: tiny fine-tunes (64 px, 8 filters) that start from a tiny base model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.model.card import RunState, read_card, read_metrics
from core.runtime.jobs import CancelToken
from core.training.finetune import FinetuneConfig, FinetuneError, base_model, finetune, lab_split, split_lab_cases
from core.training.trainer import EpochEvent, Split, TrainConfig


@pytest.fixture(scope="module")
def base(tiny_base):
    return tiny_base


def test_lab_cases_split_by_patient():
    assert split_lab_cases(["b", "a"]) in ((("a",), ("b",)), (("b",), ("a",)))
    train_ids, val_ids = split_lab_cases(["a", "b", "c"])
    assert len(val_ids) == 1 and sorted(train_ids + val_ids) == ["a", "b", "c"]
    train_ids, val_ids = split_lab_cases([f"c{i}" for i in range(10)], seed=3)
    assert len(val_ids) == 2 and not set(train_ids) & set(val_ids)
    with pytest.raises(FinetuneError, match="at least 2 cases"):
        split_lab_cases(["only"])


@pytest.mark.parametrize("seed", range(6))
def test_the_held_out_lab_case_has_tumour_when_two_cases_do(seed):
    """The tumour stage chooses its epoch and threshold on the held-out case: one without tumour scores
    every epoch 0. Held out: a case with tumour, one other left to learn from."""
    ml = {"a": 0.0, "b": 12.0, "c": 30.0}
    train_ids, val_ids = split_lab_cases(["a", "b", "c"], seed, ml)
    assert val_ids in (("b",), ("c",)) and "a" in train_ids
    # one case with tumour or none: the plain draw
    for few in ({"b": 5.0}, {}):
        assert split_lab_cases(["a", "b", "c"], seed, few) == split_lab_cases(["a", "b", "c"], seed)
    ten = {f"c{i}": (1.0 if i < 3 else 0.0) for i in range(10)}
    train_ids, val_ids = split_lab_cases(list(ten), seed, ten)
    assert len(val_ids) == 2 and all(ten[c] for c in val_ids)
    assert any(ten[c] for c in train_ids)


def test_base_model_found_by_stage(base, tmp_path):
    assert base_model(str(base), "liver") == base / "liver"
    assert base_model(str(base / "tumor"), "tumor") == base / "tumor"
    with pytest.raises(FinetuneError, match="a liver model, not a tumor model"):
        base_model(str(base / "liver"), "tumor")
    with pytest.raises(FinetuneError, match="no liver model to start from"):
        base_model(str(tmp_path), "liver")
    with pytest.raises(FinetuneError, match="minutes must be positive"):
        FinetuneConfig("d", "default", "o", minutes=0)


def test_the_base_models_input_contract_is_kept(base, tmp_path):
    from core.model.card import card_path
    from core.training.finetune import stage_config
    folder = tmp_path / "tumor"
    folder.mkdir()
    meta = read_card(base / "tumor")
    meta["preprocessing"].update(neighbour_mm=2.0, liver_hu_max=130.0)
    card_path(folder / "model.keras").write_text(json.dumps(meta))
    tc = stage_config(FinetuneConfig("d", "default", str(tmp_path / "o")), "tumor", folder, ("a",), ("b",), 1.0)
    assert tc.preprocessing().liver_hu_max == 130.0 and tc.preprocessing().neighbour_mm == 2.0


def test_the_recipes_augmentation_is_rehearsed_where_asked(base, tmp_path):
    """``liver_lesions`` (0.3 by default, as the recipe) reaches the liver stage only (the tumour stage
    keeps its own synthetic lesions); ``acquisition`` adds the recipe's thick slices and phases where
    the base model has 2.5D neighbours in mm, and nothing where it has none (the loader refuses thick
    slices there)."""
    from core.model.card import card_path
    from core.training.finetune import stage_config

    def folder(stage, neighbour_mm):
        f = tmp_path / f"{stage}-{neighbour_mm}"
        f.mkdir(exist_ok=True)
        meta = read_card(base / stage)
        meta["preprocessing"].update(neighbour_mm=neighbour_mm)
        card_path(f / "model.keras").write_text(json.dumps(meta))
        return f

    out = str(tmp_path / "o")
    default = stage_config(FinetuneConfig("d", "default", out), "liver", folder("liver", 2.0), ("a",), ("b",), 1.0)
    assert (default.liver_lesions, default.thick_slices, default.phases) == (0.3, 0.0, 0.0)
    plain = FinetuneConfig("d", "default", out, liver_lesions=0.0)
    plain_liver = stage_config(plain, "liver", folder("liver", 2.0), ("a",), ("b",), 1.0)
    assert plain_liver.liver_lesions == 0.0
    asked = FinetuneConfig("d", "default", out, liver_lesions=0.3, acquisition=True)
    liver = stage_config(asked, "liver", folder("liver", 2.0), ("a",), ("b",), 1.0)
    assert (liver.liver_lesions, liver.thick_slices, liver.phases) == (0.3, 0.4, 0.5)
    tumour = stage_config(asked, "tumor", folder("tumor", 2.0), ("a",), ("b",), 1.0)
    assert (tumour.liver_lesions, tumour.synth_lesions, tumour.thick_slices) == (0.0, 0.3, 0.4)
    flat = stage_config(asked, "liver", folder("liver", None), ("a",), ("b",), 1.0)
    assert (flat.liver_lesions, flat.thick_slices, flat.phases) == (0.3, 0.0, 0.0)
    with pytest.raises(FinetuneError, match="liver_lesions must be in"):
        FinetuneConfig("d", "default", out, liver_lesions=1.5)


def _first_batch_loss(run, weights) -> float:
    """The loss a model with ``weights`` (None: fresh) gives on the run's first training batch, as
    ``fit`` computes it on the run's own batches (same loader, same order)."""
    import keras

    from core.model.losses import LOSSES
    from core.model.resunet import ResUNetConfig, build_resunet
    from core.training.trainer import _make_datasets
    cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    split = Split(**{k: tuple(v) if isinstance(v, list) else v
                     for k, v in json.loads((run / "split.json").read_text()).items()})
    train_ds = _make_datasets(cfg, split, None, None)[0]
    keras.utils.set_random_seed(1)
    model = build_resunet(ResUNetConfig(cfg.image_size, 3, cfg.base_filters, cfg.depth))
    if weights is not None:
        model.set_weights(weights)
    # eagerly: tracing the train step for one batch took about 20 s, twice per test
    model.compile(optimizer=keras.optimizers.Adam(0.0), loss=LOSSES[cfg.loss], run_eagerly=True)
    seen = []

    class First(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(logs["loss"]))
    model.fit(train_ds, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False, callbacks=[First()])
    return seen[0]


def test_finetune_starts_from_the_base_weights_and_names_them(tiny_dataset, base, tmp_path):
    from core.model.io import load_model
    out = tmp_path / "ft"
    results = finetune(FinetuneConfig(str(tiny_dataset), str(base), str(out), stages=("liver",), minutes=0.1,
                                      export_onnx=False))
    r = results["liver"]
    assert r.status in ("time_budget", "completed") and r.epochs_done >= 1 and (out / "liver" / "model.keras").is_file()
    first = next(m for m in read_metrics(out / "liver") if m["type"] == "batch")
    assert (first["epoch"], first["batch"]) == (1, 1)
    base_weights = load_model(base / "liver" / "model.keras", compile=False).get_weights()
    from_base = _first_batch_loss(out / "liver", base_weights)
    fresh = _first_batch_loss(out / "liver", None)
    assert first["loss"] == pytest.approx(from_base, rel=1e-4)  # the base weights were loaded
    assert abs(first["loss"] - fresh) > 100 * 1e-4 * from_base  # and they are not what a fresh model gives

    card = read_card(out / "liver")
    assert card["base"]["path"] == str(base / "liver") and card["base"]["label"] == "tiny base liver"
    split = json.loads((out / "liver" / "split.json").read_text())
    assert card["finetune_cases"] == {"train": split["train"], "val": split["val"]} and len(split["val"]) == 1
    assert card["label"].startswith("[lab] fine-tuned on 2 case(s)")
    assert card["data"]["init_from"].endswith("model.keras")
    assert card["preprocessing"] == read_card(base / "liver")["preprocessing"]
    cfg = json.loads((out / "liver" / "config.json").read_text())
    assert cfg["l2sp"] > 0 and cfg["learning_rate"] == pytest.approx(1e-4) and cfg["lr_schedule"] == "cosine_time"
    with pytest.raises(FinetuneError, match="use --resume"):
        finetune(FinetuneConfig(str(tiny_dataset), str(base), str(out), stages=("liver",), minutes=0.1))


def test_finetune_resumes_within_its_time_budget(tiny_dataset, base, tmp_path):
    out, cancel = tmp_path / "ft", CancelToken()

    def stop_after_one_epoch(ev):
        if isinstance(ev, EpochEvent):
            cancel.cancel()
    cfg = FinetuneConfig(str(tiny_dataset), str(base), str(out), stages=("tumor",), minutes=1.0, export_onnx=False)
    first = finetune(cfg, progress=stop_after_one_epoch, cancel=cancel)["tumor"]
    assert first.status == "cancelled" and first.epochs_done == 1
    spent = RunState.read(out / "tumor").seconds
    assert spent > 0
    again = finetune(cfg, resume=True)["tumor"]
    assert again.status in ("time_budget", "completed") and again.epochs_done > 1
    state = RunState.read(out / "tumor")
    budget = 60 * 1.0 * (1 - 0.12)
    assert state.seconds <= budget * 1.1  # the clock went on from where it stopped, and stopped in time
    epochs = [m["epoch"] for m in read_metrics(out / "tumor") if m["type"] == "epoch"]
    assert epochs == list(range(1, again.epochs_done + 1))


def _norm_and_kernels(path):
    from core.model.io import load_model
    model = load_model(path, compile=False)
    norm = [w for layer in model.layers if type(layer).__name__ == "BatchNormalization" for w in layer.get_weights()]
    kernels = [w for layer in model.layers if type(layer).__name__ == "Conv2D" for w in layer.get_weights()[:1]]
    return norm, kernels


def test_freeze_norm_keeps_the_base_normalisation_through_a_resume(tiny_dataset, base, tmp_path):
    """With ``freeze_norm`` the BatchNormalization layers (moving statistics, scale, shift) end as the
    base has them, after a cancel and a resume too; the convolutions still learn."""
    out, cancel = tmp_path / "ft", CancelToken()

    def stop_after_one_epoch(ev):
        if isinstance(ev, EpochEvent):
            cancel.cancel()
    cfg = FinetuneConfig(str(tiny_dataset), str(base), str(out), stages=("liver",), minutes=0.6,
                         freeze_norm=True, export_onnx=False)
    assert finetune(cfg, progress=stop_after_one_epoch, cancel=cancel)["liver"].status == "cancelled"
    again = finetune(cfg, resume=True)["liver"]
    assert again.epochs_done > 1
    base_norm, base_kernels = _norm_and_kernels(base / "liver" / "model.keras")
    for name in ("last.keras", "model.keras"):
        norm, kernels = _norm_and_kernels(out / "liver" / name)
        assert len(norm) == len(base_norm) > 0
        assert all(np.array_equal(a, b) for a, b in zip(norm, base_norm, strict=True)), name
        assert any(not np.allclose(a, b) for a, b in zip(kernels, base_kernels, strict=True)), name
    assert read_card(out / "liver")["finetune"]["freeze_norm"] is True
    # without it the statistics follow the lab's cases (the base's were measured on other data)
    plain = finetune(FinetuneConfig(str(tiny_dataset), str(base), str(tmp_path / "plain"), stages=("liver",),
                                    minutes=0.2, export_onnx=False))["liver"]
    norm, _ = _norm_and_kernels(plain.model_path)
    assert any(not np.allclose(a, b) for a, b in zip(norm, base_norm, strict=True))
    with pytest.raises(Exception, match="freeze_norm needs init_from"):
        TrainConfig(dataset="d", out="o", freeze_norm=True)


def test_pull_towards_the_start_weights_is_zero_there_and_grows_away():
    import keras

    from core.model.losses import pull_towards
    from core.model.resunet import ResUNetConfig, build_resunet
    m = build_resunet(ResUNetConfig(32, 3, 4, 2))
    start = m.get_weights()
    n = pull_towards(m, start, 0.5)
    assert n == sum(1 for v in m.trainable_weights if len(v.shape) > 1) and n > 0
    assert float(sum(keras.ops.convert_to_numpy(x) for x in m.losses)) == pytest.approx(0.0, abs=1e-9)
    v = next(v for v in m.trainable_weights if len(v.shape) > 1)
    v.assign(np.asarray(v.numpy()) + 0.1)
    assert float(sum(keras.ops.convert_to_numpy(x) for x in m.losses)) == pytest.approx(0.5 * 0.01 * np.prod(v.shape),
                                                                                        rel=1e-4)


def test_finetune_and_compare_scores_both_cascades_on_the_held_out_case(tiny_dataset, base, tmp_path):
    from core.evaluation.evaluate import evaluate_dataset
    from core.model.io import load_seg_model
    from core.training.finetune_compare import finetune_and_compare
    out = tmp_path / "ft"
    res = finetune_and_compare(FinetuneConfig(str(tiny_dataset), str(base), str(out), stages=("liver",), minutes=0.1,
                                              export_onnx=False), engine="keras")
    assert res.base_models == {s: str(base / s / "model.keras") for s in ("liver", "tumor")}
    assert res.tuned_models == {"liver": str(out / "liver" / "model.keras"),
                                "tumor": str(base / "tumor" / "model.keras")}
    _, val = lab_split(tiny_dataset)
    assert [c.case_id for c in res.cases] == list(val)
    # the "after" row is what evaluating the fine-tuned cascade gives (and "before" the base's)
    for name, paths in (("before", res.base_models), ("after", res.tuned_models)):
        r = evaluate_dataset(str(tiny_dataset), load_seg_model(paths["liver"], "liver"),
                             load_seg_model(paths["tumor"], "tumor"), list(val), engine="keras")["cases"][val[0]]
        row = getattr(res.cases[0], name)
        assert row.liver_dice == pytest.approx(r["liver"]["dice"]) and row.lesions_true == r["lesions"]["true_lesions"]
    text = res.table()
    assert val[0] in text and "liver Dice before" in text
