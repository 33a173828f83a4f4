"""core.training.trainer: tiny runs (64 px, 8 filters) for both stages, resume, kill -9, cancel, NaN, mirrored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.runtime.jobs import CancelToken
from core.training.trainer import EpochEvent, TrainConfig, TrainingError, read_metrics, train

ROOT = Path(__file__).resolve().parents[3]
EPOCH_KEYS = {"epoch", "loss", "dice", "val_loss", "val_dice", "lr", "seconds"}


def tiny(ds, out, **kw) -> TrainConfig:
    base = dict(dataset=str(ds), out=str(out), epochs=2, batch_size=8, image_size=64, base_filters=8, depth=3,
                val_fraction=0.34, batch_log_seconds=0.0, export_onnx=False)
    base.update(kw)
    return TrainConfig(**base)


def test_liver_run_folder(tiny_dataset, tmp_path):
    events = []
    r = train(tiny(tiny_dataset, tmp_path / "run"), progress=events.append)
    run = tmp_path / "run"
    assert r.status == "completed" and r.epochs_done == 2
    for name in ("config.json", "split.json", "metrics.jsonl", "model.keras", "last.keras", "model.json",
                 "state.json"):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").rglob("*tfevents*"))
    split = json.loads((run / "split.json").read_text())
    assert set(split["train"]) | set(split["val"]) == {"p0", "p1", "p2"} and not set(split["train"]) & set(split["val"])
    recs = read_metrics(run)
    epochs = [x for x in recs if x["type"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and all(EPOCH_KEYS <= set(e) for e in epochs)
    assert any(x["type"] == "batch" for x in recs)
    meta = json.loads((run / "model.json").read_text())
    assert meta["stage"] == "liver" and meta["input_size"] == 64 and meta["channels"] == 3
    assert meta["preprocessing"]["recipe"] == "window25d"
    search = meta["threshold_search"]  # chosen on the validation patients at the end (core.training.threshold)
    assert search["val_patients"] == split["val"] and meta["threshold"] in search["grid"]
    assert search["val_dice"][search["grid"].index(meta["threshold"])] == pytest.approx(max(search["val_dice"]))
    assert meta["backend"] == "tensorflow" and meta["best"]["val_dice"] == pytest.approx(r.best_val_dice)
    assert meta["data"]["val_patients"] == split["val"]
    assert [e.record["epoch"] for e in events if isinstance(e, EpochEvent)] == [1, 2]
    assert not list(run.glob(".*tmp*")) and not list(run.glob(".*.keras"))

    from core.model.io import load_model
    m = load_model(run / "model.keras")
    assert m.predict(np.zeros((1, 64, 64, 3), np.float32), verbose=0).shape == (1, 64, 64, 1)


def test_tumour_stage(tiny_dataset, tmp_path):
    r = train(tiny(tiny_dataset, tmp_path / "t", stage="tumor", epochs=1, recipe="notebook", loss="dice"))
    assert r.status == "completed"
    meta = json.loads((tmp_path / "t" / "model.json").read_text())
    assert meta["stage"] == "tumor" and meta["preprocessing"]["recipe"] == "notebook"
    # synthetic lesions need a linear recipe: off for the notebook recipe, on (default) for window25d
    assert json.loads((tmp_path / "t" / "config.json").read_text())["synth_lesions"] == 0.5
    r2 = train(tiny(tiny_dataset, tmp_path / "t2", stage="tumor", epochs=1))
    assert r2.status == "completed" and (tmp_path / "t2" / "model.keras").is_file()


def test_resume_continues_the_curves(tiny_dataset, tmp_path):
    run = tmp_path / "r"
    train(tiny(tiny_dataset, run, epochs=1))
    with open(run / "metrics.jsonl", "a") as fh:  # as if killed during epoch 2
        fh.write(json.dumps({"type": "batch", "epoch": 2, "batch": 1, "loss": 9.9}) + "\n")
        fh.write('{"type": "batch", "epo')
    with pytest.raises(TrainingError, match="not empty"):
        train(tiny(tiny_dataset, run, epochs=2))
    r = train(tiny(tiny_dataset, run, epochs=3), resume=True)
    assert r.epochs_done == 3
    recs = read_metrics(run)
    assert [x["epoch"] for x in recs if x["type"] == "epoch"] == [1, 2, 3]
    assert not any(x.get("loss") == 9.9 for x in recs)


def test_cancel_within_a_batch_leaves_last_usable(tiny_dataset, tmp_path):
    tok = CancelToken()
    seen = []

    def progress(ev):
        seen.append(ev)
        if isinstance(ev, EpochEvent):
            tok.cancel()  # during epoch 2 the first batch sees it
    t = time.perf_counter()
    r = train(tiny(tiny_dataset, tmp_path / "c", epochs=5), progress=progress, cancel=tok)
    assert r.status == "cancelled" and r.epochs_done == 1
    assert time.perf_counter() - t < 120
    from core.model.io import load_model
    load_model(tmp_path / "c" / "last.keras")
    assert json.loads((tmp_path / "c" / "state.json").read_text())["epoch"] == 1


def test_nan_loss_stops_with_a_clear_error(tiny_dataset, tmp_path, monkeypatch):
    import core.model.losses as losses

    def nan_loss(y_true, y_pred):
        from keras import ops
        return ops.mean(ops.log(y_pred * 0.0 - 1.0))  # log of a negative number
    monkeypatch.setitem(losses.LOSSES, "dice", nan_loss)
    with pytest.raises(TrainingError, match="NaN"):
        train(tiny(tiny_dataset, tmp_path / "n", loss="dice"))


def test_invalid_options():
    with pytest.raises(TrainingError, match="stage"):
        TrainConfig(dataset="d", out="o", stage="lungs")
    with pytest.raises(TrainingError, match="divisible"):
        TrainConfig(dataset="d", out="o", image_size=100)
    with pytest.raises(TrainingError, match="cosine_time' needs max_minutes"):
        TrainConfig(dataset="d", out="o", lr_schedule="cosine_time")
    with pytest.raises(TrainingError, match="both in training and validation"):
        TrainConfig(dataset="d", out="o", train_cases=("a", "b"), val_cases=("b",))
    with pytest.raises(TrainingError, match="geometry"):
        TrainConfig(dataset="d", out="o", geometry="mirror")


def test_time_budget_cosine_schedule_and_a_warm_start(tiny_dataset, tmp_path):
    """max_minutes stops after the epoch that reaches it (status time_budget, still calibrated);
    cosine_time lowers the rate over that time; init_from starts from another run's weights."""
    from core.model.io import load_model
    first = train(tiny(tiny_dataset, tmp_path / "a", epochs=1, train_cases=("p0", "p1"), val_cases=("p2",)))
    assert first.status == "completed"
    cfg = tiny(tiny_dataset, tmp_path / "b", epochs=50, lr_schedule="cosine_time", max_minutes=0.001,
               init_from=str(tmp_path / "a" / "model.keras"), train_cases=("p0", "p1"), val_cases=("p2",))
    r = train(cfg)
    assert r.status == "time_budget" and r.epochs_done == 1
    meta = json.loads((tmp_path / "b" / "model.json").read_text())
    assert meta["data"]["init_from"].endswith("model.keras") and "threshold_search" in meta
    epoch = [x for x in read_metrics(tmp_path / "b") if x["type"] == "epoch"][0]
    # float32 lr; down the cosine over the (0.06 s) budget
    assert cfg.min_lr * (1 - 1e-4) <= epoch["lr"] < cfg.learning_rate
    from core.training.callbacks import cosine_lr
    assert cosine_lr(1e-3, 1e-6, 1.0, 1) == pytest.approx(1e-6) and cosine_lr(1e-3, 0, 0.5, 1) == pytest.approx(5e-4)
    assert len(load_model(tmp_path / "b" / "model.keras").get_weights()) == len(
        load_model(tmp_path / "a" / "model.keras").get_weights())
    bad = tiny(tiny_dataset, tmp_path / "c", epochs=1, base_filters=4, init_from=str(tmp_path / "a" / "model.keras"))
    with pytest.raises(TrainingError, match="cannot start from this model"):
        train(bad)


def test_mixed_precision_runs_save_float32_inference_models(tiny_dataset, tmp_path):
    """model.keras is what inference and ONNX export read: float32 even after bf16 training."""
    from core.model.io import load_model
    r = train(tiny(tiny_dataset, tmp_path / "bf16", epochs=1, precision="mixed_bfloat16", image_size=32,
                   base_filters=4, steps_per_epoch=2))
    assert r.status == "completed"
    best = load_model(tmp_path / "bf16" / "model.keras", compile=False)
    assert all(layer.dtype_policy.name == "float32" for layer in best.layers)
    assert getattr(best, "optimizer", None) is None  # the network alone: a third of the size
    last = load_model(tmp_path / "bf16" / "last.keras", compile=True)
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in last.layers)


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


TINY_ARGS = ["--epochs", "3", "--batch-size", "8", "--image-size", "32", "--filters", "4", "--depth", "2"]


def test_cli_kill_9_then_resume(tiny_dataset, tmp_path):
    run = tmp_path / "k"
    p = _cli("train", str(tiny_dataset), "--stage", "liver", "--out", str(run), *TINY_ARGS)
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:  # state.json is written last for an epoch
        if (run / "state.json").is_file() and json.loads((run / "state.json").read_text()).get("epoch", 0) >= 1:
            break
        time.sleep(0.05)
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait(60)
    done = json.loads((run / "state.json").read_text())["epoch"]
    assert done >= 1
    for f in run.iterdir():  # nothing half-written under a final name
        if f.suffix == ".json":
            json.loads(f.read_text())
    q = _cli("train", str(tiny_dataset), "--stage", "liver", "--out", str(run), "--resume", *TINY_ARGS)
    out, err = q.communicate(timeout=300)
    assert q.returncode == 0, err
    assert [x["epoch"] for x in read_metrics(run) if x["type"] == "epoch"] == [1, 2, 3]
    assert "completed: 3 epoch(s)" in out


MIRRORED = r"""
import os, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from core.training.trainer import TrainConfig, train
strategy_devices = len(tf.config.list_logical_devices("CPU"))
r = train(TrainConfig(dataset=sys.argv[1], out=sys.argv[2], epochs=1, batch_size=8, image_size=32,
                      base_filters=4, depth=2, val_fraction=0.34, strategy="mirrored"))
print("DEVICES", strategy_devices, r.status, r.epochs_done)
"""


def test_mirrored_strategy_on_two_logical_cpus(tiny_dataset, tmp_path):
    p = subprocess.run([sys.executable, "-c", MIRRORED, str(tiny_dataset), str(tmp_path / "m")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "DEVICES 2 completed 1" in p.stdout


def test_resume_epochs_is_decided_in_one_place():
    from core.training.trainer import resume_epochs
    assert resume_epochs(3, 5) == 5 and resume_epochs(5, 3) == 3  # liverseg train --resume --epochs N
    assert resume_epochs(5, 3, keep_plan=True) == 5 and resume_epochs(3, 5, keep_plan=True) == 5  # the recipe
