"""core.io.report_pdf: the PDF report renders in a standard reader and carries the CSV's numbers."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess

import numpy as np
import pytest

from core.io.report_pdf import key_image, snapshot_3d
from core.study.session import StudySession
from core.study.study import Study
from tests.system_setup import not_installed

NEED_POPPLER = pytest.mark.skipif(
    shutil.which("pdftoppm") is None and not os.environ.get("CI"),
    reason=not_installed("pdftoppm / pdftotext", "poppler-utils"))


def test_key_image_outlines_liver_and_fills_tumour():
    hu = np.full((3, 20, 20), -200, np.int16)
    label = np.zeros(hu.shape, np.uint8)
    label[1, 4:16, 4:16] = 1
    label[1, 8:12, 8:12] = 2
    img = key_image(hu, label, (1.0, 1.0, 1.0), (1, 10, 10), field_mm=20)
    assert img.shape == (20, 20, 3) and img.dtype == np.uint8
    assert tuple(img[4, 10]) == (40, 220, 60)  # the liver's edge
    assert tuple(img[8, 10]) == (255, 30, 30)  # the tumour's edge
    assert img[10, 10, 0] > img[10, 10, 1]  # inside the tumour: red over the CT
    assert tuple(img[6, 10]) == (0, 0, 0)  # liver inside, CT below the window: black, no fill


def test_snapshot_shows_the_front_most_label_head_up_with_square_pixels():
    label = np.zeros((4, 6, 5), np.uint8)
    label[:, 2:5, 1:4] = 1
    label[3, 1, 2] = 2  # a tumour in front, in the top slice
    img = snapshot_3d(label, (2.0, 1.0, 1.0))
    assert img.shape == (8, 3, 3)  # 4 slices of 2 mm over 3 columns of 1 mm
    assert img[0, 1, 0] > 200 and img[0, 1, 1] < 100  # the tumour, at the top (head up)
    assert img[-1, 1, 1] > img[-1, 1, 0]  # liver below it, green


@NEED_POPPLER
def test_pdf_report_renders_every_page_and_matches_the_csv(tmp_path):
    from core.synthetic.phantom import make_phantom
    ph = make_phantom(5, 24, 96)
    label = ph.label.copy()
    label[12, 60:62, 20:22] = np.where(label[12, 60:62, 20:22] > 0, 2, label[12, 60:62, 20:22])
    s = StudySession(Study(ph.hu, ph.spacing, label=label, name="phantom"))
    les = s.measure()[0].lesions
    assert s.review_lesions("accept", [les[0]]) == 1
    s.measure()
    pdf = s.export("pdf", tmp_path / "r.pdf")
    s.export("csv", tmp_path / "l.csv")
    assert pdf.read_bytes().startswith(b"%PDF")
    out = subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) >= 2  # the summary, then the key images
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          timeout=120).stdout
    rows = list(csv.DictReader(open(tmp_path / "l.csv")))
    assert rows and rows[0]["review"] == "accepted"
    for r in rows:
        assert f"{float(r['volume_ml']):.2f}" in text and r["review"] in text
    assert "Research use only" in text and "Key images" in text
    with pytest.raises(Exception, match="already exists"):
        s.export("pdf", pdf)
