"""Many studies in one run: one output each, a summary CSV, broken studies reported, shards, merge."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.runtime.errors import LiverSegError
from core.study.batch import (
    SUMMARY_COLUMNS,
    StudyRow,
    find_studies,
    merge_summaries,
    parse_shard,
    read_summary,
    run_batch,
    take_shard,
    write_summary,
)
from core.synthetic.phantom import make_phantom, write_patient
from tests.core.models import threshold_model

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """Three phantom studies and a broken one (a truncated file, nothing else)."""
    root = tmp_path_factory.mktemp("batch")
    zips = root / "zips"
    for i, seed in enumerate((3, 4, 5), start=1):
        folder = write_patient(make_phantom(seed, 12, 48), zips, i)
        with zipfile.ZipFile(folder / "PATIENT_DICOM.zip") as z:
            z.extractall(root / "studies" / f"study-{seed}")
    (root / "studies" / "broken").mkdir()
    (root / "studies" / "broken" / "slice.dcm").write_bytes(b"DICM" + b"\x00" * 50)
    (root / "studies" / "empty").mkdir()  # no files: not a study
    return root / "studies"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from core.model.io import load_seg_model
    d = tmp_path_factory.mktemp("models")
    return (load_seg_model(threshold_model(d / "liver", "liver", 60), "liver"),
            load_seg_model(threshold_model(d / "tumor", "tumor", 400), "tumor"))


def test_shards_are_disjoint_and_cover_the_list():
    items = [f"s{i:02d}" for i in range(11)]
    parts = [take_shard(items, (k, 4)) for k in range(1, 5)]
    assert sorted(sum(parts, [])) == items
    assert all(not set(a) & set(b) for i, a in enumerate(parts) for b in parts[i + 1:])
    assert take_shard(items, (2, 4)) == ["s01", "s05", "s09"]
    assert parse_shard("3/10") == (3, 10) and parse_shard(None) is None
    for bad in ("0/3", "4/3", "x", "1-3"):
        with pytest.raises(LiverSegError, match="K/N"):
            parse_shard(bad)


def test_batch_writes_each_study_reports_the_broken_one_and_skips_on_rerun(studies, models, tmp_path):
    from tests.core.datasets.test_ircadb import tree_digest
    before = tree_digest(studies)
    assert [p.name for p in find_studies(studies)] == ["broken", "study-3", "study-4", "study-5"]
    events = []
    out = tmp_path / "out"
    rows, summary = run_batch(studies, out, *models, progress=events.append)
    assert summary == out / "summary.csv"
    by = {r.study: r for r in rows}
    assert by["broken"].status == "error" and by["broken"].error, by["broken"]
    assert "\n" not in by["broken"].error
    for s in ("study-3", "study-4", "study-5"):
        assert by[s].status == "done" and float(by[s].liver_ml) > 0, by[s]
        assert (out / f"{s}.nii.gz").is_file()
        assert "CPU" in by[s].engine
    assert [e.done for e in events if e.stage == "studies"] == [0, 1, 2, 3, 4]
    assert read_summary(summary) == rows
    assert tree_digest(studies) == before  # sources untouched
    # rerun: existing outputs skipped, their figures kept; --force redoes them
    (out / "study-4.nii.gz").unlink()
    rows2, _ = run_batch(studies, out, *models)
    by2 = {r.study: r for r in rows2}
    assert by2["study-3"] == by["study-3"]  # skipped, figures from the last run
    assert by2["study-4"].status == "done" and by2["broken"].status == "error"
    rows3, _ = run_batch(studies, out, *models, force=True, shard=(1, 2))
    assert [r.study for r in rows3] == ["broken", "study-4"]
    assert (out / "summary-1-of-2.csv").is_file()
    with pytest.raises(LiverSegError, match="source DICOM folder"):
        run_batch(studies, studies / "study-3" / "out", *models)


def test_merge_joins_shards_and_refuses_overlap(tmp_path):
    a = write_summary(tmp_path / "summary-1-of-2.csv",
                      [StudyRow("b", "done", "1.0"), StudyRow("d", "error", error="x")])
    b = write_summary(tmp_path / "summary-2-of-2.csv", [StudyRow("a", "done", "2.0")])
    merged = merge_summaries([a, b], tmp_path / "all.csv")
    assert [r.study for r in merged] == ["a", "b", "d"]
    with open(tmp_path / "all.csv", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == SUMMARY_COLUMNS
    with pytest.raises(LiverSegError, match="also in another summary"):
        merge_summaries([a, a], tmp_path / "again.csv")
    (tmp_path / "other.csv").write_text("id,volume_ml\n1,2\n")
    with pytest.raises(LiverSegError, match="not a LiverSeg batch summary"):
        merge_summaries([tmp_path / "other.csv"], tmp_path / "x.csv")


def test_cli_batch_shards_and_merge(studies, tmp_path):
    """Two shards as a job array would run them, then merge: every study once."""
    d = tmp_path / "m"
    lm, tm = threshold_model(d / "liver", "liver", 60), threshold_model(d / "tumor", "tumor", 400)
    src = tmp_path / "src"
    shutil.copytree(studies, src, ignore=shutil.ignore_patterns("broken"))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
    out = tmp_path / "out"
    for k in (1, 2):
        r = cli("predict", str(src), "--batch", "--shard", f"{k}/2", "--out", str(out), "--liver-model", str(lm),
                "--tumor-model" if k == 1 else "--tumour-model", str(tm))  # the flag in either spelling
        assert r.returncode == 0, r.stderr[-2000:]
        assert "segmented" in r.stdout
    r = cli("merge", str(out / "summary-1-of-2.csv"), str(out / "summary-2-of-2.csv"), "--out", str(out / "all.csv"))
    assert r.returncode == 0, r.stderr
    assert [row.study for row in read_summary(out / "all.csv")] == ["study-3", "study-4", "study-5"]
    r = cli("predict", str(src), "--shard", "1/2", "--out", str(out / "x.nii.gz"))
    assert r.returncode == 2 and "--batch" in r.stderr


def test_volume_files_are_studies_too(studies, models, tmp_path):
    """A NIfTI file beside the DICOM study folders: segmented, its label on the file's own grid."""
    import nibabel as nib

    from tests.core.io.test_volume_file import canonical_ct, write_as
    src = tmp_path / "src"
    shutil.copytree(studies / "study-3", src / "study-3")
    arr, ras = write_as(src / "vol-1.nii.gz", canonical_ct(8, 32, 32), "RAS")
    assert [p.name for p in find_studies(src)] == ["study-3", "vol-1.nii.gz"]
    rows, _ = run_batch(src, tmp_path / "out", *models)
    assert [(r.study, r.status) for r in rows] == [("study-3", "done"), ("vol-1", "done")], rows
    seg = nib.load(str(tmp_path / "out" / "vol-1.nii.gz"))
    assert seg.shape == arr.shape
    np.testing.assert_allclose(seg.affine, ras, atol=1e-5)
    (src / "vol-1").mkdir()
    (src / "vol-1" / "x.dcm").write_bytes(b"x")
    with pytest.raises(LiverSegError, match="same output"):
        find_studies(src)


def test_a_summary_from_before_the_one_spelling_still_merges(tmp_path):
    """Shard summaries written with the old ``tumour_ml`` column merge with new ones."""
    from core.study.batch import SUMMARY_COLUMNS, merge_summaries, read_summary
    old_header = ",".join("tumour_ml" if c == "tumor_ml" else c for c in SUMMARY_COLUMNS)
    (tmp_path / "a.csv").write_text(old_header + "\nb,done,1500.0,12.50,2,cpu,3.1,b.nii.gz,\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text(",".join(SUMMARY_COLUMNS) + "\na,done,1400.0,0.00,0,cpu,2.9,a.nii.gz,\n",
                                    encoding="utf-8")
    assert read_summary(tmp_path / "a.csv")[0].tumour_ml == "12.50"
    rows = merge_summaries([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path / "all.csv")
    assert [(r.study, r.tumour_ml) for r in rows] == [("a", "0.00"), ("b", "12.50")]
    assert (tmp_path / "all.csv").read_text(encoding="utf-8").splitlines()[0] == ",".join(SUMMARY_COLUMNS)
    (tmp_path / "c.csv").write_text("study,volume\nx,1\n", encoding="utf-8")
    with pytest.raises(LiverSegError, match="not a LiverSeg batch summary"):
        read_summary(tmp_path / "c.csv")
