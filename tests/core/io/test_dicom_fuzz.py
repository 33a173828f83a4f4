"""Hostile inputs: mutated DICOM files give a volume or the one typed error, nothing else."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.io.dicom import DicomError, load_series, scan
from tests.core.factory import copy_with_mutation, hu_volume, write_series

TAG_PATCHES = {  # (group, element) -> packed little-endian values to try
    "rows": (0x0028, 0x0010), "cols": (0x0028, 0x0011), "bits": (0x0028, 0x0100),
    "stored": (0x0028, 0x0101), "samples": (0x0028, 0x0002), "pixrep": (0x0028, 0x0103),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tmpl")
    write_series(folder, hu_volume(3, 16), shuffle_names=False)
    return sorted(folder.iterdir())


def _patch_us(data: bytearray, tag, value: int) -> None:
    key = struct.pack("<HH", *tag) + b"US"
    i = data.find(key)
    if i >= 0:
        data[i + 8:i + 10] = struct.pack("<H", value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    victim=st.integers(0, 2),
    cut=st.one_of(st.none(), st.integers(0, 1700)),
    flips=st.lists(st.tuples(st.integers(0, 1800), st.integers(0, 255)), max_size=8),
    patch=st.one_of(st.none(), st.tuples(st.sampled_from(sorted(TAG_PATCHES)), st.integers(0, 65535))),
)
def test_mutated_files(template, tmp_path_factory, victim, cut, flips, patch):
    folder = tmp_path_factory.mktemp("fuzz")
    copy_with_mutation(template, folder, victim, flips, cut,
                       (lambda d: _patch_us(d, TAG_PATCHES[patch[0]], patch[1])) if patch else None)
    try:
        scan(folder)
        v = load_series(folder)
    except DicomError as exc:
        assert "\n" not in str(exc)
    else:
        assert v.hu.dtype == np.int16 and v.hu.ndim == 3 and v.hu.size <= 3 * 16 * 16 * 4
