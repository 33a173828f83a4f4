"""Training CT rendered from real anatomy: expert label maps in, random but plausible HU out.

3D-IRCADb-01 gives us two real CTs and the expert label maps of sixteen more patients
whose CT we do not have (:mod:`core.anatomy`). A model trained on two CTs learns two
livers; rendering CT from the sixteen label maps shows it sixteen more real livers,
with their real tumours, vessels, bones and neighbours, at their real positions. The
idea follows SynthSeg (Billot et al., Medical Image Analysis 2023): draw a new
appearance for every sample, so that the network has to learn shape and context rather
than one scanner's grey values. Unlike SynthSeg, intensities are drawn around real CT
values (Hounsfield units are calibrated, and the model's input window is fixed), with
a contrast-phase variable coupling the organs as contrast agent does:

* a contrast phase per sample (:data:`PHASE_SHARES`: portal-venous 45 %, arterial 20 %,
  equilibrium/delayed 20 %, unenhanced 15 %) sets liver, spleen, vessels, kidneys and
  pancreas from literature ranges (:data:`PHASES`, :func:`draw_table`) around one
  enhancement level; 3D-IRCADb-01 patient 17: liver median 103 HU, patient 7: 120 HU,
  portal vein 154-169 (portal-venous);
* tumours differ from the liver around them per phase (portal-venous: -90..-15 HU in three
  of four, else +15..+60; arterial: hypervascular HCC +20..+80 in half; equilibrium: wash-out
  -10..-40 in half), with their own texture and, often, a necrotic core, an enhancing rim or
  calcifications (patient 17's two large metastases have all three), sometimes lipiodol
  after chemo-embolisation (300-1500 HU); cysts are near water;
* tissue the maps leave unlabelled inside the skin (fat, muscle, bowel, stomach when it
  is not outlined) is filled with a subcutaneous fat layer and an abdominal-wall muscle
  layer of random thickness under the skin, and inside them a random mixture of fat,
  soft tissue, gas and, sometimes, oral contrast in blobs of random size;
* then texture per structure, partial-volume blur, a soft, standard or sharp reconstruction
  kernel (:mod:`core.synthetic.kernels`) with noise of 3-40 HU sd, and a smooth bias.

Rendering works on the model's input grid (after resizing and augmentation), for the
2.5D channels together (one appearance per sample), about 1-2 ms per 128 x 128 x 3 sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ..datasets import anatomy as A
from ..transforms.masks import crop_box
from .kernels import pick as _pick
from .kernels import reconstruct

# Share of samples whose organ intensities ignore the priors entirely (SynthSeg-style),
# so that shape and context, not one grey value, identify the liver.
RANDOM_CONTRAST_SHARE = 0.1


def _smooth(rng: np.random.Generator, s: int, cells: int) -> np.ndarray:
    """Smooth random field, about N(0, 1) in value, [s, s], bilinear from a (cells + 1)^2 grid."""
    c = rng.standard_normal((cells + 1, cells + 1), dtype=np.float32)
    t = np.linspace(0, cells, s, dtype=np.float32)
    i0 = np.minimum(t.astype(np.intp), cells - 1)
    f = t - i0
    rows = c[i0] * (1 - f)[:, None] + c[i0 + 1] * f[:, None]  # [s, cells + 1]
    return rows[:, i0] * (1 - f) + rows[:, i0 + 1] * f


def _octaves(rng: np.random.Generator, s: int, cells: int) -> np.ndarray:
    """Smooth field with detail: two octaves (cells and 2 x cells), about N(0, 1)."""
    return (_smooth(rng, s, cells) + 0.5 * _smooth(rng, s, min(2 * cells, s // 2))) / 1.118


def distances(anat: np.ndarray, px_mm: float) -> np.ndarray:
    """Per-slice distances that place the tissue the maps leave unlabelled.

    Args:
        anat: uint8 [Z, S, S] anatomy codes on the model's grid.
        px_mm: pixel size in mm.

    Returns:
        float16 [Z, S, S, 2]: depth below the skin (mm; 1000 where a slice shows no skin, as in
        a crop inside the body) and distance to the nearest bone (mm; 1000 where it has no bone).
    """
    out = np.empty(anat.shape + (2,), np.float16)
    for i, a in enumerate(anat):
        body = a != A.OUTSIDE
        if not body.any():
            out[i, ..., 0] = 0
        elif body.all():  # a crop inside the body (tumour stage): no skin in sight
            out[i, ..., 0] = 1000
        else:
            out[i, ..., 0] = ndimage.distance_transform_edt(body) * px_mm
        bone = a == A.BONE
        out[i, ..., 1] = ndimage.distance_transform_edt(~bone) * px_mm if bone.any() else 1000
    return out


# Contrast phases: share of the rendered samples and HU ranges per structure (mean HU of the
# structure in one sample). A tuple ``(lo, hi)`` is absolute HU; ``("liver", lo, hi)`` is
# relative to the sample's liver. Sources (see :func:`draw_table`): unenhanced liver 55-65 HU,
# about 8 HU above the spleen, blood 35-50 HU (Boll & Merkle, RadioGraphics 2009; Kodama et al.,
# AJR 2007); aortic and hepatic enhancement over time (Bae, Radiology 2010); corticomedullary
# and nephrographic renal phases (Yuh & Cohan, AJR 1999); arciform splenic enhancement in the
# arterial phase (Glazer et al., AJR 1981); arterial-phase hyper-enhancement and portal-venous
# or delayed wash-out of HCC (LI-RADS v2018 CT/MRI); 3D-IRCADb-01 (portal-venous): patient 17
# liver median 103 HU, patient 7 120 HU, portal vein 154-169 HU.
PHASE_SHARES = {"portal": 0.45, "arterial": 0.20, "equilibrium": 0.20, "unenhanced": 0.15}
PHASES: dict[str, dict[str, Any]] = {
    "unenhanced": {
        "liver": (50, 65), "portal": (35, 50), "venous": (35, 50), "artery": (35, 50),
        "spleen": ("liver", -15, 0), "kidney": (25, 40), "pancreas": (35, 50),
        # tumour contrast vs liver: (share, lo, hi) per kind, shares summing to 1
        "tumour": ((0.85, -40, -10), (0.15, 10, 30)),
    },
    "arterial": {  # late arterial, 35-45 s
        "liver": (60, 90), "portal": (100, 180), "venous": (40, 90), "artery": (250, 450),
        "spleen": ("liver", 10, 70), "kidney": (150, 250), "pancreas": (90, 150),
        "tumour": ((0.5, 20, 80), (0.5, -70, -15)),  # hypervascular HCC (APHE) / hypovascular
    },
    "portal": {  # portal-venous, 60-80 s
        "liver": (90, 130), "portal": (150, 200), "venous": (130, 190), "artery": (150, 220),
        "spleen": ("liver", -5, 20), "kidney": (150, 220), "pancreas": (80, 120),
        "tumour": ((0.75, -90, -15), (0.25, 15, 60)),
    },
    "equilibrium": {  # equilibrium / delayed, 3-5 min
        "liver": (80, 110), "portal": ("liver", 0, 40), "venous": ("liver", 0, 40),
        "artery": ("liver", 0, 40), "spleen": ("liver", -10, 10), "kidney": (120, 200),
        "pancreas": (70, 100),
        "tumour": ((0.5, -40, -10), (0.35, -80, -20), (0.15, 10, 40)),  # HCC wash-out / metastases / fill-in
    },
}
_PHASE_CODES = {"portal": A.PORTAL, "venous": A.VENOUS, "artery": A.ARTERY, "spleen": A.SPLEEN,
                "kidney": A.KIDNEY, "pancreas": A.PANCREAS}


def draw_phase(rng: np.random.Generator) -> str:
    """A contrast phase for one sample, drawn with :data:`PHASE_SHARES`."""
    names = list(PHASE_SHARES)
    return names[_pick(rng, [PHASE_SHARES[k] for k in names])]


def _phase_table(rng: np.random.Generator, phase: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and texture HU of every anatomy code for one sample of ``phase`` (:data:`PHASES`)."""
    ranges = PHASES[phase]
    mu = np.zeros(A.N_CODES, np.float32)
    sd = np.zeros(A.N_CODES, np.float32)
    # one enhancement level for the sample, so that organs move together within a phase
    level = rng.uniform(0, 1)
    u = np.clip(level + rng.normal(0, 0.2, len(_PHASE_CODES) + 1), 0, 1)

    def value(r, k):
        lo, hi = r[-2], r[-1]
        return (liver if r[0] == "liver" else 0.0) + lo + (hi - lo) * u[k]

    liver = value(ranges["liver"], 0)
    mu[A.OUTSIDE], sd[A.OUTSIDE] = -1000, 5
    mu[A.LIVER], sd[A.LIVER] = liver, rng.uniform(3, 15)
    for k, (name, code) in enumerate(_PHASE_CODES.items(), 1):
        mu[code] = value(ranges[name], k)
    kinds = ranges["tumour"]
    kind = kinds[_pick(rng, [k[0] for k in kinds])]
    mu[A.TUMOUR], sd[A.TUMOUR] = liver + rng.uniform(kind[1], kind[2]), rng.uniform(5, 30)
    mu[A.CYST], sd[A.CYST] = rng.uniform(-5, 25), rng.uniform(2, 8)
    sd[A.PORTAL], sd[A.VENOUS], sd[A.ARTERY] = rng.uniform(5, 20), rng.uniform(5, 25), rng.uniform(5, 25)
    mu[A.BONE], sd[A.BONE] = rng.uniform(200, 650), rng.uniform(60, 200)
    sd[A.KIDNEY] = rng.uniform(10, 35)
    # arterial spleen: arciform, heterogeneous (coarser and stronger texture)
    sd[A.SPLEEN] = rng.uniform(15, 45) if phase == "arterial" else rng.uniform(3, 15)
    mu[A.LUNG], sd[A.LUNG] = rng.uniform(-920, -720), rng.uniform(20, 80)
    mu[A.GALLBLADDER], sd[A.GALLBLADDER] = rng.uniform(-5, 35), rng.uniform(2, 8)
    mu[A.STOMACH], sd[A.STOMACH] = rng.choice([rng.uniform(-20, 45), rng.uniform(120, 300)], p=[0.8, 0.2]), \
        rng.uniform(5, 25)
    sd[A.PANCREAS] = rng.uniform(5, 15)
    mu[A.ADRENAL], sd[A.ADRENAL] = rng.uniform(10, 80), rng.uniform(5, 25)
    mu[A.OTHER], sd[A.OTHER] = rng.uniform(-20, 120), rng.uniform(5, 30)
    return mu, sd


# Low-contrast tumours (``low_contrast`` of :func:`draw_table` / :func:`render`): 8-25 HU from the
# liver, darker in 4 of 5, with a quiet texture. The tumour stage misses tumours within about 20 HU
# of the liver (HCC wash-out, docs/MODELS.md); the literature table rarely draws them.
LOW_CONTRAST_HU = (8.0, 25.0)
LOW_CONTRAST_SD = (3.0, 10.0)


def draw_table(rng: np.random.Generator, low_contrast: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and texture HU of every anatomy code for one sample (float32 [N_CODES] each).

    A contrast phase is drawn per sample (:data:`PHASE_SHARES`: portal-venous 45 %, arterial
    20 %, equilibrium/delayed 20 %, unenhanced 15 %), then every structure's mean from the
    phase's range (:data:`PHASES`) around one enhancement level shared by the sample:

    ============  =========  =========  ==========  ============  =====================
    phase         liver      portal v.  artery      spleen        tumour vs liver
    ============  =========  =========  ==========  ============  =====================
    unenhanced    50-65      35-50      35-50       liver -15..0  -40..-10 (85 %)
    arterial      60-90      100-180    250-450     liver +10..70 +20..+80 HCC (50 %)
    portal        90-130     150-200    150-220     liver -5..20  -90..-15 (75 %)
    equilibrium   80-110     liver+0-40 liver+0-40  liver +-10    -40..-10 wash-out (50 %)
    ============  =========  =========  ==========  ============  =====================

    Kidney: 25-40 / 150-250 (cortex) / 150-220 / 120-200 HU; hepatic veins and vena cava
    35-50 / 40-90 (unopacified) / 130-190 / liver +0..40 HU. Sources: Boll & Merkle,
    "Diffuse liver disease: strategies for hepatic CT and MR imaging", RadioGraphics 2009;
    Kodama et al., AJR 2007 (unenhanced liver and spleen); Bae, "Intravenous contrast medium
    administration and scan timing at CT", Radiology 2010 (aortic and hepatic enhancement per
    phase); Yuh & Cohan, AJR 1999 (renal phases); Glazer et al., AJR 1981 (arterial splenic
    heterogeneity); ACR LI-RADS v2018 (arterial hyper-enhancement, wash-out of HCC).

    With probability :data:`RANDOM_CONTRAST_SHARE` the organs are then drawn anywhere in the
    window (SynthSeg-style). BODY's entries are unused (the tissue mixture replaces it).
    ``low_contrast``: share of the samples whose tumour lies :data:`LOW_CONTRAST_HU` from the liver
    (0, the default, draws nothing more: the same tables as before).
    """
    mu, sd = _phase_table(rng, draw_phase(rng))
    if rng.random() < RANDOM_CONTRAST_SHARE:  # organs anywhere in the window; air, lung, bone stay
        organs = [A.LIVER, A.SPLEEN, A.KIDNEY, A.PANCREAS, A.STOMACH, A.GALLBLADDER, A.ADRENAL, A.OTHER,
                  A.PORTAL, A.VENOUS, A.ARTERY, A.CYST]
        mu[organs] = rng.uniform(-60, 260, len(organs))
        mu[A.TUMOUR] = mu[A.LIVER] + rng.choice([-1, 1]) * rng.uniform(20, 90)
    if low_contrast and rng.random() < low_contrast:
        sign = -1.0 if rng.random() < 0.8 else 1.0
        mu[A.TUMOUR] = mu[A.LIVER] + sign * rng.uniform(*LOW_CONTRAST_HU)
        sd[A.TUMOUR] = rng.uniform(*LOW_CONTRAST_SD)
    return mu, sd


def _body_tissue(rng: np.random.Generator, dist: np.ndarray, s: int, px_mm: float, fields=None) -> np.ndarray:
    """HU of unlabelled tissue inside the skin for one sample, [S, S] (before texture and noise).

    ``dist``: [..., 2] depth below the skin and distance to bone, mm (:func:`distances`), [S, S, 2]
    for a sample. ``fields(rng, blob_mm)``: the smooth N(0, 1) fields of blobs of about ``blob_mm``
    in ``dist``'s shape (a volume: :mod:`core.synthetic.volume_ct`); default: [S, S] fields.
    """
    depth, to_bone = dist[..., 0], dist[..., 1]
    fat_mm = rng.uniform(3, 35)
    wall_mm = rng.uniform(4, 18)
    fat_hu, muscle_hu, soft_hu = rng.uniform(-130, -70), rng.uniform(30, 70), rng.uniform(15, 60)
    blob_mm = rng.uniform(20, 60)  # blobs of 20-60 mm, with detail
    if fields is None:
        cells = int(np.clip(s * px_mm / blob_mm, 2, 32))
        f1, f2 = _octaves(rng, s, cells), _octaves(rng, s, max(2, cells * 2))
    else:
        f1, f2 = fields(rng, blob_mm), fields(rng, blob_mm / 2)
    out = np.full(depth.shape, soft_hu, np.float32)
    out[f1 < rng.uniform(-1.2, 0.0)] = fat_hu  # visceral fat
    out[f1 > rng.uniform(1.0, 1.8)] = muscle_hu
    out[to_bone < rng.uniform(5, 45)] = muscle_hu  # paraspinal and psoas muscles, intercostals
    out[f2 > rng.uniform(1.3, 2.3)] = rng.uniform(-1000, -500)  # bowel gas
    if rng.random() < 0.3:  # oral contrast in some bowel loops
        out[f2 < -rng.uniform(1.3, 2.3)] = rng.uniform(120, 400)
    out[depth < fat_mm + wall_mm] = muscle_hu
    out[depth < fat_mm] = fat_hu
    return out


# Shares of the rendered tumours that get each pattern (independently).
NECROSIS_SHARE, RIM_SHARE, CALC_SHARE = 0.35, 0.3, 0.15
# Lipiodol after chemo-embolisation (TACE) of HCC: dense deposits filling a blob or most of the
# tumour. "Quantitative assessment of lipiodol deposition after chemoembolization: comparison
# between cone-beam CT and multidetector CT" (J Vasc Interv Radiol 2013;24:1837-44): tumour-to-
# liver contrast 283 +- 152 HU on CT the day after, 69-72 % of the tumour volume holding oil;
# "Lipiodol retention and massive necrosis after lipiodol-chemoembolization of hepatocellular
# carcinoma" (Cardiovasc Intervent Radiol 1993;16:209-13): >= 365 HU in tumours with massive
# necrosis, uniform dense retention. Compact deposits reach ~1500 HU.
LIPIODOL_SHARE = 0.08
LIPIODOL_HU = (300.0, 1500.0)


def _tumour_pattern(x: np.ndarray, tumour: np.ndarray, rng: np.random.Generator, px_mm: float) -> None:
    """Necrotic core, enhancing rim, calcifications and lipiodol inside the tumour pixels, in place.

    ``x``: [S, S, C] HU; ``tumour``: bool [S, S, C]. Lipiodol (:data:`LIPIODOL_SHARE`) is painted
    over the tumour where one smooth field, shared by the channels, exceeds a threshold that
    covers 20-100 % of the tumour (blobs of 4-15 mm), at 300-1500 HU with some texture.
    """
    necrosis, rim, calc = rng.random() < NECROSIS_SHARE, rng.random() < RIM_SHARE, rng.random() < CALC_SHARE
    lipiodol = rng.random() < LIPIODOL_SHARE
    if not (necrosis or rim or calc or lipiodol):
        return
    core_mm, dark, bright = rng.uniform(3, 12), rng.uniform(20, 70), rng.uniform(20, 70)
    if lipiodol:
        s = x.shape[0]
        field = _smooth(rng, s, int(np.clip(s * px_mm / rng.uniform(4, 15), 2, s // 2)))
        cover = rng.uniform(0.2, 1.0)
        thr = np.quantile(field[tumour.any(-1)], 1 - cover) if cover < 0.98 else -np.inf
        lo, hi = LIPIODOL_HU
        oil = np.exp(rng.uniform(np.log(lo), np.log(hi)))  # denser deposits rarer
        oil_sd = rng.uniform(0.03, 0.15) * oil
    for k in range(x.shape[-1]):
        t = tumour[..., k]
        if not t.any():
            continue
        if necrosis or rim:
            depth = _depth(t, px_mm)
            if necrosis:
                x[..., k][depth > core_mm] -= dark
            if rim:
                x[..., k][t & (depth <= 2.5)] += bright
        if calc:
            spots = t & (rng.random(t.shape) < rng.uniform(0.005, 0.04))
            x[..., k][spots] = rng.uniform(200, 700)
        if lipiodol:
            dep = t & (field >= thr)
            x[..., k][dep] = np.maximum(lo, oil + oil_sd * field[dep])


def _depth(t: np.ndarray, px_mm: float) -> np.ndarray:
    """Distance (mm) of each pixel of mask ``t`` to the nearest pixel outside it, 0 outside.

    The transform runs on the mask's bounding box grown by one pixel (clipped to the image): the
    nearest outside pixel of any mask pixel lies in it, so the distances are those of the whole
    image, at a fraction of the cost for a small tumour.
    """
    box = crop_box(t, pad=1)
    out = np.zeros(t.shape, np.float64)
    out[box] = ndimage.distance_transform_edt(t[box])
    out *= px_mm
    return out


def render(anat: np.ndarray, dist: np.ndarray, px_mm: np.ndarray, rng: np.random.Generator,
           low_contrast: float = 0.0) -> np.ndarray:
    """Render CT for a batch of anatomy samples.

    Every sample gets one appearance (one :func:`draw_table`, one texture, one body tissue from
    the middle channel's ``dist``) for all of its C channels, whatever C; then a kernel
    (:data:`core.synthetic.kernels.KERNELS`: soft, standard or sharp) and noise of 3-40 HU sd.

    Args:
        anat: uint8 [N, S, S, C] anatomy codes of the C 2.5D channels (on the model's grid).
        dist: [N, S, S, 2] the middle channel's depth below the skin and distance to bone, mm.
        px_mm: [N] pixel size in mm on the model's grid (texture and layer sizes follow it).
        rng: the batch's generator.
        low_contrast: share of the samples with a low-contrast tumour (:func:`draw_table`).

    Returns:
        float32 [N, S, S, C] Hounsfield units.
    """
    n, s, _, c = anat.shape
    out = np.empty(anat.shape, np.float32)
    for b in range(n):
        mu, sd = draw_table(rng, low_contrast)
        pm = float(px_mm[b])
        x = mu[anat[b]]  # [S, S, C]
        body = anat[b] == A.BODY
        if body.any():
            tissue = _body_tissue(rng, np.asarray(dist[b], np.float32), s, pm)
            sd[A.BODY] = rng.uniform(5, 20)
            np.copyto(x, tissue[..., None], where=body)
        texture = _smooth(rng, s, int(np.clip(s * pm / rng.uniform(3, 10), 4, 96)))  # 3-10 mm grain
        x += sd[anat[b]] * texture[..., None]
        tumour = anat[b] == A.TUMOUR
        if tumour.any():
            _tumour_pattern(x, tumour, rng, pm)
        reconstruct(x, rng)
        if rng.random() < 0.5:
            x += rng.uniform(0, 20) * _smooth(rng, s, 2)[..., None]
        out[b] = x
    return out
