"""core.datasets.dataset: the case file format and manifest."""

from __future__ import annotations

import numpy as np
import pytest

from core.datasets.dataset import Case, list_cases, load_case, read_manifest, write_case
from core.runtime.errors import DatasetError


def _case(cid="c.1", z=3):
    hu = np.arange(z * 4 * 5, dtype=np.int16).reshape(z, 4, 5)
    label = np.zeros(hu.shape, np.uint8)
    label[1, 1:3, 1:3] = 1
    label[1, 2, 2] = 2
    return Case(cid, hu, label, (2.0, 0.5, 0.5), (1.0, 2.0, 3.0), np.eye(3), {"source": "test"})


def test_roundtrip_and_mmap(tmp_path):
    c = _case()
    entry = write_case(tmp_path, c)
    assert entry["liver_ml"] == pytest.approx(4 * 0.5 / 1000) and entry["tumor_ml"] == pytest.approx(0.5 / 1000)
    for mmap in (False, True):
        back = load_case(tmp_path, "c.1", mmap=mmap)
        np.testing.assert_array_equal(back.hu, c.hu)
        np.testing.assert_array_equal(back.label, c.label)
        assert back.spacing == (2.0, 0.5, 0.5) and back.origin == (1.0, 2.0, 3.0) and back.meta == {"source": "test"}
    assert isinstance(load_case(tmp_path, "c.1", mmap=True).hu, np.memmap)
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


def test_list_cases_natural_order(tmp_path):
    for cid in ("p.10", "p.2", "p.1"):
        write_case(tmp_path, _case(cid))
    assert list_cases(tmp_path) == ["p.1", "p.2", "p.10"]
    assert list(read_manifest(tmp_path)["cases"]) == ["p.1", "p.2", "p.10"]


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset folder"):
        list_cases(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no such case file"):
        load_case(tmp_path, "missing")
    with pytest.raises(DatasetError, match="invalid case id"):
        write_case(tmp_path, _case("../evil"))
    write_case(tmp_path, _case("bad"))
    p = tmp_path / "bad.npz"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DatasetError, match="corrupt case file"):
        load_case(tmp_path, "bad")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="unreadable manifest"):
        list_cases(tmp_path)
