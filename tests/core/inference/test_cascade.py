"""core.inference.cascade and core.model.io: the cascade, legacy .h5, model refusals."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.evaluation import metrics
from core.inference.cascade import TumourFilters, above_threshold, resize_chunked, segment
from core.model.io import ModelError, load_seg_model
from tests.core.models import cube_volume, threshold_model

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return (load_seg_model(threshold_model(root / "liver", "liver", 150), "liver"),
            load_seg_model(threshold_model(root / "tumor", "tumor", 260), "tumor"))


def test_cascade_geometry_on_a_known_volume(models):
    hu, truth = cube_volume()
    vol = SimpleNamespace(hu=hu, spacing=(2.0, 0.8, 0.8))
    events = []
    seg = segment(vol, *models, progress=events.append, return_probs=True, tumour_filters=TumourFilters(min_ml=0.0))
    assert seg.label.shape == hu.shape and seg.label.dtype == np.uint8
    assert metrics.dice(seg.label > 0, truth > 0) > 0.97
    assert metrics.dice(seg.label == 2, truth == 2) > 0.9
    assert seg.info["tumor_slices"] == 8  # only the liver's slices went through the tumour model
    assert {e.stage for e in events} == {"liver", "tumor"}
    assert seg.liver_prob.shape == hu.shape and seg.tumour_prob.dtype == np.float16
    assert seg.warnings == [] and seg.timings["total"] > 0


def test_small_tumours_dropped_and_outside_liver_ignored(models):
    hu, _ = cube_volume()
    hu[0, 0:4, 0:4] = 400  # a bright spot outside the liver
    seg = segment(SimpleNamespace(hu=hu, spacing=(2.0, 0.8, 0.8)), *models, tumour_filters=TumourFilters(min_ml=1.0))
    assert not (seg.label == 2).any()  # the real tumour is 0.16 mL < 1 mL
    seg = segment(SimpleNamespace(hu=hu, spacing=(2.0, 0.8, 0.8)), *models, tumour_filters=TumourFilters(min_ml=0.0))
    assert seg.label[0, 0:4, 0:4].max() == 0


def test_no_liver_gives_empty_result_and_warning(models):
    hu = np.full((4, 32, 32), -1000, np.int16)
    seg = segment(SimpleNamespace(hu=hu, spacing=(1, 1, 1)), *models)
    assert not seg.label.any() and "no liver found" in seg.warnings[0]


def test_batch_size_and_cpu_override(models):
    hu, truth = cube_volume()
    seg = segment(SimpleNamespace(hu=hu, spacing=(2.0, 0.8, 0.8)), *models, batch_size=3, device="cpu")
    assert seg.info["batch_size"] == 3 and "CPU" in seg.info["device"]
    assert metrics.dice(seg.label > 0, truth > 0) > 0.97


def test_legacy_notebook_h5(tmp_path):
    from core.model.resunet import ResUNetConfig, build_resunet
    m = build_resunet(ResUNetConfig(256, 3, 4, 4))  # the notebooks' architecture, thinner to stay quick
    m.save(tmp_path / "liver_segmentation_100percent.h5")
    sm = load_seg_model(tmp_path / "liver_segmentation_100percent.h5", "liver")
    assert sm.pre.recipe == "notebook" and sm.pre.size == 256 and sm.threshold == 0.5
    seg = segment(SimpleNamespace(hu=cube_volume(3, 64)[0], spacing=(1, 1, 1)), sm, None)
    assert seg.label.shape == (3, 64, 64)


def test_model_refusals(tmp_path, models):
    with pytest.raises(ModelError, match="no such model file"):
        load_seg_model(tmp_path / "nope.keras")
    (tmp_path / "bad.keras").write_bytes(b"not a zip at all")
    with pytest.raises(ModelError, match="cannot load model"):
        load_seg_model(tmp_path / "bad.keras")
    with pytest.raises(ModelError, match="not a liver model"):
        load_seg_model(models[1].path, "liver")
    inp = keras.Input((32, 32, 1))
    keras.Model(inp, keras.layers.Conv2D(1, 1)(inp)).save(tmp_path / "one.keras")
    (tmp_path / "one.json").write_text('{"stage": "liver", "input_size": 32, "preprocessing": '
                                       '{"recipe": "window25d", "window": [-100, 400], "size": 32}}')
    with pytest.raises(ModelError, match="unexpected input shape"):
        load_seg_model(tmp_path / "one.keras")
    inp = keras.Input((32, 32, 3))
    lam = keras.Model(inp, keras.layers.Lambda(lambda x: x[..., :1] * 2)(inp))
    lam.save(tmp_path / "lambda.h5")
    with pytest.raises(ModelError, match="Lambda"):
        load_seg_model(tmp_path / "lambda.h5")
    lam.save(tmp_path / "lambda.keras")
    (tmp_path / "lambda.json").write_text((tmp_path / "one.json").read_text())
    with pytest.raises(ModelError, match="cannot load model"):  # safe mode refuses the Lambda
        load_seg_model(tmp_path / "lambda.keras")


def test_chunked_post_processing_equals_whole_volume():
    from scipy import ndimage

    from core.transforms.postprocess import dilate, fill_holes, largest_component, remove_small
    rng = np.random.default_rng(3)
    m = ndimage.binary_opening(rng.random((30, 40, 40)) > 0.55)
    np.testing.assert_array_equal(dilate(m, 2), ndimage.binary_dilation(m, iterations=2))
    ring = np.zeros((20, 30, 30), bool)
    ring[2:18, 5:25, 5:25] = True
    ring[2:18, 10:20, 10:20] = False  # a tube: open along z, a hole in every slice
    filled = fill_holes(ring)
    assert filled[2:18, 10:20, 10:20].all() and not filled[0].any()
    lc = largest_component(m)
    lab, n = ndimage.label(m)
    assert lc.sum() == np.bincount(lab.ravel())[1:].max()
    small = remove_small(m, 10)
    sizes = np.bincount(lab.ravel())
    assert small.sum() == sizes[1:][sizes[1:] >= 10].sum()


def test_upsampling_only_near_the_threshold_equals_thresholding_the_whole_upsampled_map():
    from scipy import ndimage
    rng = np.random.default_rng(5)
    small = ndimage.gaussian_filter(rng.random((12, 32, 32)).astype(np.float32), (0, 2, 2))
    small = (small - small.min()) / (small.max() - small.min())  # smooth blobs in [0, 1]
    small[[0, 5, 11]] *= 0.4  # slices that never reach the threshold
    small[3, 0, 31] = 0.9     # a lone hot pixel in a corner
    for h, w, t in ((300, 305, 0.5), (256, 256, 0.7), (37, 90, 0.45), (32, 32, 0.5)):
        expect = resize_chunked(small, h, w) > t
        got = above_threshold(small, h, w, t)
        assert expect.any() and not expect[[0, 5, 11]].any()
        np.testing.assert_array_equal(got, expect)
    assert not above_threshold(small * 0.1, 64, 64, 0.5).any()


def test_fill_holes_and_keep_inside_equal_their_plain_scipy_definitions():
    """The fast post-processing steps give exactly what the plain definitions give."""
    from scipy import ndimage

    from core.transforms.postprocess import dilate, fill_holes, keep_inside
    rng = np.random.default_rng(7)
    for trial in range(4):
        m = ndimage.binary_opening(rng.random((40, 48, 44)) > 0.25 + 0.05 * trial)
        expected = np.stack([ndimage.binary_fill_holes(s) for s in m])
        assert (expected & ~m).sum() > 50  # the mask has holes to fill
        np.testing.assert_array_equal(fill_holes(m), expected)
        liver = ndimage.binary_opening(rng.random(m.shape) > 0.5)
        tumour = rng.random(m.shape) > 0.97
        np.testing.assert_array_equal(keep_inside(tumour, liver), tumour & dilate(liver, 2))
        np.testing.assert_array_equal(keep_inside(tumour, liver), tumour & ndimage.binary_dilation(liver, iterations=2))
    assert not keep_inside(np.zeros((3, 4, 4), bool), np.ones((3, 4, 4), bool)).any()


def test_models_with_mm_neighbours_run_on_thick_slices(models, tmp_path):
    import json
    folder = threshold_model(tmp_path / "mm", "liver", 150)
    meta = json.loads((folder / "model.json").read_text())
    meta["preprocessing"]["neighbour_mm"] = 2.0
    (folder / "model.json").write_text(json.dumps(meta))
    mm = load_seg_model(folder, "liver")
    assert mm.pre.neighbour_mm == 2.0 and models[0].pre.neighbour_mm is None
    hu, truth = cube_volume()
    vol = SimpleNamespace(hu=hu, spacing=(5.0, 0.8, 0.8))
    # the threshold model reads the middle channel only: interpolated neighbours change nothing
    keep_all = TumourFilters(min_ml=0.0)
    a, b = segment(vol, mm, models[1], tumour_filters=keep_all), segment(vol, *models, tumour_filters=keep_all)
    assert np.array_equal(a.label, b.label) and metrics.dice(a.label > 0, truth > 0) > 0.97


def test_dark_proposals_are_not_tumours(models):
    from core.transforms.postprocess import drop_dark
    mask = np.zeros((3, 8, 8), bool)
    mask[0:2, 1:3, 1:3] = True  # mean -50 HU: fat
    mask[1:3, 5:7, 5:7] = True  # mean 40 HU
    hu = np.full(mask.shape, 40, np.int16)
    hu[0:2, 1:3, 1:3] = -50
    out = drop_dark(mask, hu, -20.0)
    assert not out[0:2, 1:3, 1:3].any() and out[1:3, 5:7, 5:7].all()
    # in the cascade: a tumour of fat inside the liver is dropped
    hu, _ = cube_volume()
    seg = segment(SimpleNamespace(hu=hu, spacing=(2.0, 0.8, 0.8)), *models,
                  tumour_filters=TumourFilters(min_ml=0.0, min_hu=400))
    assert not (seg.label == 2).any() and (seg.label == 1).any()


@pytest.mark.parametrize("margin_mm, steps", [(5.0, (6, 2)), (0.0, (0, 0)), (2.5, (3, 1))])
def test_tumour_margin_in_mm_becomes_steps_of_the_scan(models, monkeypatch, margin_mm, steps):
    """``TumourFilters.margin_mm`` reaches keep_inside as in-plane steps of the mean pixel and whole slices."""
    import core.inference.cascade as cascade
    seen = []
    real = cascade.clean_tumour
    monkeypatch.setattr(cascade, "clean_tumour",
                        lambda t, liver, n, margin: seen.append(margin) or real(t, liver, n, margin))
    hu, truth = cube_volume()
    seg = segment(SimpleNamespace(hu=hu, spacing=(2.0, 0.8, 0.8)), *models,
                  tumour_filters=TumourFilters(min_ml=0.0, margin_mm=margin_mm))
    assert seen == [steps]
    assert metrics.dice(seg.label == 2, truth == 2) > 0.9  # a tumour inside the liver: the same either way


def test_a_liver_brighter_than_the_tumour_model_knows_is_shifted_down(models, tmp_path):
    import json
    folder = threshold_model(tmp_path / "bright", "tumor", 260)
    hu, truth = cube_volume()  # liver 200 HU, tumour 320 HU: the tumour model marks > 260 HU
    vol = SimpleNamespace(hu=hu, spacing=(2.0, 0.8, 0.8))
    keep_all = TumourFilters(min_ml=0.0)
    for top, found in ((250.0, True), (100.0, False)):  # 200 HU below the limit: as is; above: 100 HU down
        meta = json.loads((folder / "model.json").read_text())
        meta["preprocessing"]["liver_hu_max"] = top
        (folder / "model.json").write_text(json.dumps(meta))
        tm = load_seg_model(folder, "tumor")
        assert tm.pre.liver_hu_max == top
        seg = segment(vol, models[0], tm, tumour_filters=keep_all)
        assert (seg.label == 2).any() == found
        assert seg.info.get("tumor_hu_shift") == (None if found else -100.0)


def test_an_organ_on_a_thin_bridge_is_cut_off_the_liver(models):
    """A 'kidney' joined to the liver by a thin bridge: the largest component holds both; the cascade cuts
    it off (``info["liver_cut_ml"]``) unless told not to."""
    hu = np.full((24, 112, 96), -1000, np.int16)
    hu[2:22, 6:54, 10:86] = 200  # liver, 40 x 38 x 61 mm
    hu[6:18, 72:104, 32:64] = 200  # kidney, 24 x 26 x 26 mm (15.7 mL), 14 mm below it
    hu[11:13, 54:72, 45:51] = 200  # a bridge 4 x 4.8 mm
    vol = SimpleNamespace(hu=hu, spacing=(2.0, 0.8, 0.8))
    whole = segment(vol, models[0], cut_liver_bridges=False)
    cut = segment(vol, models[0])
    assert whole.label[12, 88, 48] == 1 and "liver_cut_ml" not in whole.info  # the kidney's centre
    assert cut.label[6:18, 72:104, 32:64].max() == 0
    liver = (slice(2, 22), slice(6, 54), slice(10, 86))
    assert np.array_equal(cut.label[liver], whole.label[liver])  # the liver untouched
    assert 12.0 < cut.info["liver_cut_ml"] < 17.0  # the kidney (as the liver stage saw it) and part of the bridge
