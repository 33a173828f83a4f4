"""Live training curves from a run folder's metrics.jsonl (a training in this app, or one on a server),
followed through :class:`core.model.card.MetricsFollower`."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.model.card import MetricsFollower, read_config


class CurvesWidget(QWidget):
    """Loss and Dice per epoch (train and validation) plus throttled batch loss, with an ETA.

    Signal ``updated(int)``: number of epoch points shown.
    """

    updated = Signal(int)

    def __init__(self, parent=None, interval_ms: int = 500):
        super().__init__(parent)
        self.follower: MetricsFollower | None = None
        self.total_epochs: int | None = None
        lay = QVBoxLayout(self)
        self.loss_plot = pg.PlotWidget(title="Loss")
        self.dice_plot = pg.PlotWidget(title="Dice")
        for p in (self.loss_plot, self.dice_plot):
            p.addLegend(offset=(-10, 10))
            p.setLabel("bottom", "epoch")
            p.showGrid(x=True, y=True, alpha=0.2)
        self.batch_curve = self.loss_plot.plot([], [], pen=pg.mkPen((120, 120, 120), width=1), name="batch loss")
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("c", width=2), symbol="o", symbolSize=5,
                                              name="loss")
        self.val_loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("y", width=2), symbol="o", symbolSize=5,
                                                  name="val loss")
        self.dice_curve = self.dice_plot.plot([], [], pen=pg.mkPen("c", width=2), symbol="o", symbolSize=5,
                                              name="Dice")
        self.val_dice_curve = self.dice_plot.plot([], [], pen=pg.mkPen("y", width=2), symbol="o", symbolSize=5,
                                                  name="val Dice")
        self.status = QLabel("")
        lay.addWidget(self.loss_plot)
        lay.addWidget(self.dice_plot)
        lay.addWidget(self.status)
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.refresh)

    def follow(self, run_dir: str, total_epochs: int | None = None) -> None:
        self.follower = MetricsFollower(run_dir)
        self.total_epochs = total_epochs
        if total_epochs is None:
            try:
                self.total_epochs = read_config(run_dir)["epochs"]
            except (OSError, ValueError, KeyError):
                pass
        self.refresh(force=True)
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def refresh(self, force: bool = False) -> None:
        if self.follower is None or not (self.follower.poll() or force):
            return
        ep = self.follower.epochs()
        x = [r["epoch"] for r in ep]

        def col(k):
            return [r.get(k, float("nan")) for r in ep]
        self.loss_curve.setData(x, col("loss"))
        self.val_loss_curve.setData(x, col("val_loss"))
        self.dice_curve.setData(x, col("dice"))
        self.val_dice_curve.setData(x, col("val_dice"))
        b = self.follower.batches()[-2000:]
        if b:
            # batch records carry (epoch, batch): place them between epoch points
            per = max(r["batch"] for r in b) or 1
            self.batch_curve.setData([r["epoch"] - 1 + r["batch"] / per for r in b], [r["loss"] for r in b])
        text = f"{len(ep)} epoch(s)"
        if ep:
            last = ep[-1]
            text += f"; last: loss {last.get('loss', 0):.4f}, val Dice {last.get('val_dice', 0):.4f}"
            if self.total_epochs and len(ep) < self.total_epochs:
                secs = sum(r.get("seconds", 0) for r in ep) / len(ep)
                eta = secs * (self.total_epochs - ep[-1]["epoch"])
                text += f"; ETA {int(eta // 60)} min {int(eta % 60)} s"
        self.status.setText(text)
        self.updated.emit(len(ep))
