"""Shared fixtures: paths to the shared real patient, extracted once per session."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_P17 = ROOT.parent / "shared" / "data" / "3Dircadb1.17"


@pytest.fixture(scope="session")
def p17_src() -> Path:
    """The shared patient 17 folder (PATIENT_DICOM.zip, MASKS_DICOM.zip), read-only."""
    if not (SHARED_P17 / "PATIENT_DICOM.zip").exists():  # a user's clone has none; CI always has it
        pytest.skip("../shared/data/3Dircadb1.17 is absent: tests on the real patient need the shared data")
    return SHARED_P17


SHARED_HCC = ROOT.parent / "shared" / "data" / "hcc-tace-seg"


@pytest.fixture(scope="session")
def hcc_unpacked(tmp_path_factory) -> Path:
    """The HCC-TACE-Seg archives of ../shared unpacked once per session (core.datasets.hcc_tace.unpack)."""
    if not (SHARED_HCC / "HCC_015.tar.xz").exists():  # a user's clone has none; CI always has it
        pytest.skip("../shared/data/hcc-tace-seg is absent: the real HCC-TACE-Seg series need the shared data")
    from core.datasets.hcc_tace import unpack
    return unpack(SHARED_HCC, tmp_path_factory.mktemp("hcc"))


@pytest.fixture(scope="session")
def p17_extracted(p17_src, tmp_path_factory) -> Path:
    """Patient 17 with both zips extracted (PATIENT_DICOM/, MASKS_DICOM/)."""
    out = tmp_path_factory.mktemp("p17") / "3Dircadb1.17"
    for name in ("PATIENT_DICOM.zip", "MASKS_DICOM.zip"):
        with zipfile.ZipFile(p17_src / name) as z:
            z.extractall(out)
    return out


import os  # noqa: E402

# As core/runtime/ml_backend.py sets them: TensorFlow's oneDNN CPU kernels corrupt the heap while training.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # any test that makes a QApplication runs headless
# The user's saved settings (engine, Keras backend) never reach the tests, nor do the tests' reach
# the user: commands run as subprocesses read a private config folder, and every test in this
# process gets its own settings file.
import tempfile  # noqa: E402

os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="liverseg-test-config-")
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="liverseg-test-data-")  # the user models folder
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="liverseg-test-cache-")  # demo study, int8 verdicts


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory, monkeypatch):
    path = tmp_path_factory.mktemp("settings") / "settings.json"
    monkeypatch.setattr("core.runtime.settings.settings_path", lambda: path)
    verdicts = path.with_name("engines.json")  # each test measures its own int8 verdicts
    monkeypatch.setattr("core.inference.engines.verdicts.verdicts_path", lambda: verdicts)
    return path


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Three small phantom patients (16 slices of 64 x 64) as a dataset folder."""
    from core.datasets.dataset import Case, write_case
    from core.synthetic.phantom import make_phantom
    folder = tmp_path_factory.mktemp("tiny-ds")
    for s in range(3):
        c = make_phantom(20 + s, 16, 64)
        write_case(folder, Case(f"p{s}", c.hu, c.label, c.spacing))
    return folder


@pytest.fixture(scope="session")
def tiny_base(tiny_dataset, tmp_path_factory) -> Path:
    """A tiny two-stage base for fine-tunes: what `liverseg train-default` leaves (liver/, tumor/), at 64 px."""
    from core.training.trainer import TrainConfig, train
    root = tmp_path_factory.mktemp("tiny-base")
    for stage in ("liver", "tumor"):
        train(TrainConfig(dataset=str(tiny_dataset), out=str(root / stage), stage=stage, epochs=1, batch_size=8,
                          image_size=64, base_filters=8, depth=3, val_fraction=0.34, export_onnx=False,
                          steps_per_epoch=4, label=f"tiny base {stage}"))
    return root


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A private Orthanc (tests/pacs_server.py) holding the phantom study; skips locally without
    Orthanc, fails under CI."""
    from core.synthetic.phantom import make_phantom, write_patient
    from tests.pacs_server import OrthancServer
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"))
    try:
        folder = write_patient(make_phantom(3, slices=24, size=128), tmp_path_factory.mktemp("pacs-phantom"), 1)
        server.upload_zip_series(folder / "PATIENT_DICOM.zip", "PATIENT_DICOM/")
        server.phantom_folder = folder
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def orthanc_p17(orthanc, p17_src):
    """The Orthanc above, also holding the real patient 17 (uploaded once)."""
    if not getattr(orthanc, "has_p17", False):
        orthanc.upload_zip_series(p17_src / "PATIENT_DICOM.zip", "PATIENT_DICOM/")
        orthanc.has_p17 = True
    return orthanc


# --- the installer builds in the background, timing tests last (tests/background_builds.py) ---

def pytest_collection_modifyitems(config, items):
    """Tests marked ``quiet`` (they measure the GUI's responsiveness) run last, in their own order."""
    items[:] = [i for i in items if i.get_closest_marker("quiet") is None] + \
               [i for i in items if i.get_closest_marker("quiet") is not None]


def pytest_collection_finish(session):
    from tests import background_builds
    if session.config.option.collectonly or not background_builds.wanted():
        return
    if any(item.nodeid.startswith("tests/test_installer.py") for item in session.items):
        background_builds.start()


def pytest_sessionfinish(session):
    from tests import background_builds
    background_builds.stop()


@pytest.fixture(autouse=True)
def _quiet_machine(request):
    """A ``quiet`` test starts once no installer build runs beside it."""
    if request.node.get_closest_marker("quiet") is not None:
        from tests import background_builds
        background_builds.wait_all()
