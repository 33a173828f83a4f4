"""CLI progress: rich's bar (rate, ETA) on a terminal, plain lines with rate and ETA otherwise."""

from __future__ import annotations

import io

from core.cli.progress_bar import ProgressBar, format_eta
from core.runtime.jobs import Progress


def test_format_eta():
    assert format_eta(None) == "--:--"
    assert format_eta(float("nan")) == "--:--"
    assert format_eta(65) == "01:05"
    assert format_eta(3723) == "1:02:03"


def test_plain_lines_carry_rate_and_eta_and_are_throttled(monkeypatch):
    clock = iter([0.0, 1.0, 1.5, 4.0, 4.1, 6.0])
    monkeypatch.setattr("core.cli.progress_bar.time.monotonic", lambda: next(clock))
    out = io.StringIO()
    bar = ProgressBar(out, tty=False, plain_interval=2.0)
    bar(Progress("predict", 0, 10, "study a"))        # t=0: first line
    bar(Progress("predict", 2, 10, "study b"))        # t=1: throttled
    bar(Progress("predict", 3, 10, "study c"))        # t=1.5: throttled
    bar(Progress("predict", 4, 10, "study d"))        # t=4: 1/s, 6 left
    bar(Progress("predict", 5, 10))                   # t=4.1: throttled
    bar(Progress("predict", 10, 10))                  # t=6: final, always shown
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["predict", "0/10", "0%", "study", "a"]
    assert lines[1].split() == ["predict", "4/10", "40%", "1.0/s", "ETA", "00:06", "study", "d"]
    assert lines[2].split()[:4] == ["predict", "10/10", "100%", "1.7/s"]
    assert "ETA" not in lines[2]
    assert len(lines) == 3


def test_unknown_total_and_rich_display():
    out = io.StringIO()
    bar = ProgressBar(out, tty=False)
    bar(Progress("scan", 7, 0, "files"))
    assert out.getvalue().split() == ["scan", "7", "files"]
    out = io.StringIO()
    bar = ProgressBar(out, tty=True)
    for i in range(0, 11):
        bar(Progress("train", i, 10, f"epoch 1/2 loss {1 / (i + 1):.2f}"))
    bar(Progress("export", 1, 1))
    bar.close()
    bar.close()  # idempotent
    text = out.getvalue()
    assert "train" in text and "10/10" in text and "export" in text and "loss 0.09" in text
