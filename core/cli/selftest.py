"""``liverseg selftest``: generate a small phantom, segment it with the default models, check.

Headless; used after installing (and by the installer's tests) to prove that the
decoders, the Keras backend (or, in the lite edition, ONNX Runtime alone) and the bundled models
work together on this machine.
"""

from __future__ import annotations

import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

from ..catalog.library import default_models
from ..evaluation import metrics
from ..inference.cascade import segment
from ..inference.engines import engines_line
from ..io.dicom import load_series
from ..model.io import load_seg_model
from ..runtime.choices import Engine
from ..runtime.edition import LITE_NAME, keras_available
from ..synthetic.phantom import make_phantom, write_patient


def run_selftest(echo: Callable[[str], None] = print, engine: Engine = "auto") -> list[str]:
    """Returns the list of failures (empty when everything works)."""
    failures: list[str] = []
    t0 = time.perf_counter()
    if not keras_available():  # the default models run through their ONNX files; Keras is never needed
        echo(f"edition: {LITE_NAME} (ONNX Runtime only: no Keras, no training)")
    try:
        case = make_phantom(4242, 48, 256)
        with tempfile.TemporaryDirectory() as tmp:
            folder = write_patient(case, tmp, 1)
            with zipfile.ZipFile(folder / "PATIENT_DICOM.zip") as z:
                z.extractall(Path(tmp) / "dicom")
            vol = load_series(Path(tmp) / "dicom")
        if (vol.hu != case.hu).any():
            failures.append("DICOM round trip changed the phantom's HU values")
        echo(f"phantom written and read back: {vol.shape} ({time.perf_counter() - t0:.1f} s)")
        d_liver_entry, d_tumour_entry = default_models()
        if d_liver_entry is None:
            raise RuntimeError("no bundled liver model found")
        liver = load_seg_model(d_liver_entry.path, "liver", lazy=True)
        tumour = load_seg_model(d_tumour_entry.path, "tumor", lazy=True) if d_tumour_entry else None
        seg = segment(vol, liver, tumour, engine=engine)
        d_liver = metrics.dice(seg.label > 0, case.label > 0)
        names = " + ".join(Path(e.path).parent.name for e in (d_liver_entry, d_tumour_entry) if e)
        echo(f"default models {names} ({engines_line(seg.info['engines'])}): liver Dice {d_liver:.3f} "
             f"({seg.timings.get('total', 0):.1f} s)")
        if d_liver < 0.8:  # the phantom is easy; the real-CT defaults give about 0.93, the demo models 0.93
            failures.append(f"liver Dice {d_liver:.3f} is below 0.8 with the default models ({names})")
    except Exception as exc:  # report, never crash: this is a diagnostic
        failures.append(f"{type(exc).__name__}: {exc}")
    return failures
