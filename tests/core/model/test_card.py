"""core.model.card: the run folder and the model card (no Keras needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.model import card as runs
from core.model.card import (
    MetricsAppender,
    MetricsFollower,
    card_path,
    drop_card_entry,
    find_card,
    has_card,
    model_folder,
    read_card,
    read_metrics,
    rewrite_metrics,
    update_card,
    write_card,
)
from core.runtime.errors import ModelError

ROOT = Path(__file__).resolve().parents[3]


def test_card_round_trip_and_update_keeps_other_keys(tmp_path):
    card = {"stage": "liver", "input_size": 64, "preprocessing": {"recipe": "window25d"}, "threshold": 0.5}
    write_card(tmp_path, card)
    assert has_card(tmp_path) and read_card(tmp_path) == card
    assert read_card(tmp_path / "model.keras") == card  # a folder's model file finds the same card
    got = update_card(tmp_path, onnx={"file": "model.onnx"}, threshold=0.35)
    assert got == read_card(tmp_path)
    assert read_card(tmp_path) == {**card, "threshold": 0.35, "onnx": {"file": "model.onnx"}}
    assert list(read_card(tmp_path)) == ["stage", "input_size", "preprocessing", "threshold", "onnx"]
    assert json.loads((tmp_path / "model.json").read_text())["onnx"] == {"file": "model.onnx"}


def test_card_writes_are_atomic(tmp_path, monkeypatch):
    write_card(tmp_path, {"stage": "liver", "int8": {"validated": True}})
    before = (tmp_path / "model.json").read_bytes()

    def broken_dump(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr("core.runtime.atomic.json.dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        update_card(tmp_path, label="new")
    assert (tmp_path / "model.json").read_bytes() == before  # the old card, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]  # no temp file left


def test_drop_card_entry_rewrites_only_when_present(tmp_path):
    write_card(tmp_path, {"stage": "tumor", "int8": {"validated": False}, "onnx": {"file": "model.onnx"}})
    assert drop_card_entry(tmp_path, "int8") is True
    assert read_card(tmp_path) == {"stage": "tumor", "onnx": {"file": "model.onnx"}}
    mtime = (tmp_path / "model.json").stat().st_mtime_ns
    os.utime(tmp_path / "model.json", ns=(mtime - 10**9, mtime - 10**9))
    assert drop_card_entry(tmp_path, "int8") is False
    assert (tmp_path / "model.json").stat().st_mtime_ns == mtime - 10**9  # not rewritten


def test_card_lookup_rule_for_model_files(tmp_path):
    # model.keras and last.keras: the folder's model.json (run folders, shipped models)
    assert card_path(tmp_path / "model.keras") == tmp_path / "model.json"
    assert card_path(tmp_path / "last.keras") == tmp_path / "model.json"
    # any other file: its own foo.json, never the folder's model.json
    assert card_path(tmp_path / "foo.keras") == tmp_path / "foo.json"
    assert card_path(tmp_path / "notebook.h5") == tmp_path / "notebook.json"
    assert card_path(tmp_path / "model.h5") == tmp_path / "model.json"
    write_card(tmp_path, {"stage": "liver"})
    assert find_card(tmp_path / "foo.keras") is None  # model.json describes model.keras, not foo.keras
    assert find_card(tmp_path / "last.keras") == {"stage": "liver"}
    (tmp_path / "foo.json").write_text(json.dumps({"stage": "tumor"}))
    assert find_card(tmp_path / "foo.keras") == {"stage": "tumor"} == read_card(tmp_path / "foo.keras")


def test_shipped_model_folders_keep_their_cards():
    from core.catalog.library import bundled_models_dir
    folders = [d for d in sorted(bundled_models_dir().iterdir()) if (d / "model.keras").is_file()]
    assert folders, "no shipped models"
    for d in folders:
        assert card_path(d / "model.keras") == d / "model.json"
        card = read_card(d / "model.keras")
        assert card == read_card(d) == json.loads((d / "model.json").read_text(encoding="utf-8"))
        assert card["stage"] in ("liver", "tumor") and model_folder(d / "model.keras") == d


def test_unreadable_or_missing_card(tmp_path):
    with pytest.raises(ModelError, match="no such model card"):
        read_card(tmp_path)
    with pytest.raises(ModelError, match="not a trained model folder"):
        model_folder(tmp_path / "model.keras")
    assert find_card(tmp_path / "model.keras") is None and not has_card(tmp_path)
    (tmp_path / "model.json").write_text('{"stage": "liv')
    with pytest.raises(ModelError, match="unreadable model metadata"):
        read_card(tmp_path)
    with pytest.raises(ModelError, match="unreadable model metadata"):
        find_card(tmp_path / "model.keras")
    from core.model.io import ModelError as IoModelError
    assert IoModelError is ModelError  # callers catching core.model.io.ModelError still catch it


def test_config_split_state(tmp_path):
    assert not runs.has_config(tmp_path)
    assert runs.read_state(tmp_path) == {"epoch": 0}  # no epoch completed yet
    runs.write_config(tmp_path, {"epochs": 3, "window": [-100.0, 400.0]})
    runs.write_split(tmp_path, {"train": ["a", "b"], "val": ["c"], "test": [], "seed": 0})
    runs.write_state(tmp_path, {"epoch": 2, "best_val_dice": 0.8})
    assert runs.has_config(tmp_path) and runs.read_config(tmp_path)["epochs"] == 3
    assert runs.read_split(tmp_path)["val"] == ["c"]
    assert runs.read_state(tmp_path) == {"epoch": 2, "best_val_dice": 0.8}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "split.json", "state.json"]


def _epoch(e):
    return {"type": "epoch", "epoch": e, "loss": 1.0 / e, "val_dice": 0.1 * e}


def test_metrics_reading_skips_a_torn_last_line(tmp_path):
    assert read_metrics(tmp_path) == []
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(_epoch(1)) + "\n" + json.dumps(_epoch(2)) + "\n" + '{"type": "batch", "ep')
    assert read_metrics(tmp_path) == [_epoch(1), _epoch(2)]
    path.write_text(json.dumps(_epoch(1)) + "\n" + json.dumps(_epoch(2)))  # complete JSON, no newline yet
    assert read_metrics(tmp_path) == [_epoch(1)]
    path.write_text(json.dumps(_epoch(1)) + "\n{garbage\n" + json.dumps(_epoch(3)) + "\n")
    assert read_metrics(tmp_path) == [_epoch(1)]  # nothing after a broken line is trusted


def test_appender_and_rewrite_on_resume(tmp_path):
    m = MetricsAppender(tmp_path)
    for e in (1, 2):
        m.append({"type": "batch", "epoch": e, "batch": 1, "loss": 0.5})
        m.append(_epoch(e), sync=True)
    m.append({"type": "batch", "epoch": 3, "batch": 1, "loss": 0.4})  # killed during epoch 3
    m.close()
    assert len(read_metrics(tmp_path)) == 5
    inode = os.stat(tmp_path / "metrics.jsonl").st_ino
    rewrite_metrics(tmp_path, 2)
    recs = read_metrics(tmp_path)
    assert [r["epoch"] for r in recs] == [1, 1, 2, 2] and recs[-1] == _epoch(2)
    assert os.stat(tmp_path / "metrics.jsonl").st_ino != inode  # replaced atomically, not truncated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_follower_reads_increments_and_restarts_after_a_rewrite(tmp_path):
    f = MetricsFollower(tmp_path)
    assert f.poll() is False  # no file yet
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(_epoch(1)) + "\n")
    assert f.poll() is True and [r["epoch"] for r in f.epochs()] == [1]
    with open(path, "a") as fh:
        fh.write(json.dumps({"type": "batch", "epoch": 2, "batch": 4, "loss": 0.3}) + "\n" + '{"type": "ep')
    assert f.poll() is True and len(f.batches()) == 1 and len(f.epochs()) == 1  # the torn line waits
    assert f.poll() is False
    with open(path, "a") as fh:
        fh.write('och", "epoch": 2}\n')
    assert f.poll() is True and [r["epoch"] for r in f.epochs()] == [1, 2]
    tmp = tmp_path / "m.tmp"
    tmp.write_text(json.dumps(_epoch(1)) + "\n" + json.dumps(_epoch(2)) + "\n" + json.dumps(_epoch(3)) + "\n")
    os.replace(tmp, path)  # a resume rewrites the file (a new inode)
    assert f.poll() is True
    assert f.epochs() == [_epoch(1), _epoch(2), _epoch(3)] and f.batches() == []


def test_runs_imports_nothing_heavy():
    code = ("import sys, json, core.model.card\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('keras', 'tensorflow', 'torch', 'jax', 'PySide6', 'pyqtgraph'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         check=True).stdout
    assert json.loads(out.splitlines()[-1]) == []


def test_run_state_reads_and_writes_state_json_as_before(tmp_path):
    old = {"epoch": 1, "best_val_dice": 0.13, "best_epoch": 1, "wait": 0, "lr_wait": 0, "lr": 0.001}
    runs.write_state(tmp_path, old)
    st = runs.RunState.read(tmp_path)
    assert (st.epoch, st.best_val_dice, st.best_epoch, st.lr, st.stopped_early) == (1, 0.13, 1, 0.001, False)
    st.write(tmp_path)
    assert runs.read_state(tmp_path) == old  # the same keys: older code reads it too
    later = {"epoch": 4, "wait": 3, "lr_wait": 1, "stopped_early": True, "lr": 0.5, "newer_key": [1]}
    assert runs.RunState.from_dict(later).to_dict() == later  # no best yet; unknown keys kept
    assert runs.RunState.read(tmp_path / "none") == runs.RunState()
