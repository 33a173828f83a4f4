"""Would a lesion-level filter cut false lesions? Scored on whole rendered validation patients.

Protocol: the validation label maps of the recipe (3D-IRCADb-01 patients 9 and 13,
which no shipped model trained on; they only chose each stage's best epoch and threshold) are
rendered as whole CT volumes, one appearance per volume (:func:`core.synthetic.volume_ct.render_volume`),
in every contrast phase and with several seeds. The cascade segments each as a user's study
(default engine and post-processing). Every proposed lesion (3D component of the tumour label)
gets features, and is a hit when it matches a true lesion as ``core.evaluation.metrics.lesion_detection``
counts it (Dice >= 0.2 or its centroid inside), else a false lesion:

* ``ml``, ``slices``, ``diam_mm`` (longest axial diameter);
* ``peak``, ``mean_p``: the tumour model's highest and mean probability inside it;
* ``contrast``: its mean HU minus the median of the predicted liver; ``local_contrast``: its mean
  minus the median of a 2-3 mm shell of liver around it (``shell_sd``: that shell's sd);
* ``max_depth_mm``: its deepest voxel's distance to the nearest voxel outside the liver (3D, mm);
  ``surface_depth_mm``: the same less half a voxel along that direction, the depth below a boundary
  halfway between voxels, as the cascade's depth rule measures it (on 5 mm slices a
  voxel under an outside one is 2.5 mm deep, not 5);
* ``inside``: the share of its voxels inside the liver stage's own mask (as the cascade cleans it): the
  cascade keeps tumour voxels up to 2 voxels outside the liver, for lesions on its rim.

Then every drop rule ``feature < t`` and every pair ``f1 < t1 and f2 < t2`` (thresholds at the
features' deciles) is scored: false lesions removed, hits lost (and their mL). Rules are ranked by
``false removed - WEIGHT x hits lost``: a lost lesion costs more than a false one.

Confirmation on real CT (``--real``): a real patient that the tumour model never trained on (a
leave-one-out run, ``bench/benchmarks/real_quality.py``) and its acquisition proxies
(:data:`core.synthetic.acquisition.VARIANTS`), segmented and scored the same way; the best rules
found on the rendered patients are then applied to its proposed lesions.

    .venv/bin/python bench/experiments/lesion_filter.py --dataset WORK/dataset --seeds 2 --out lesions.json
    .venv/bin/python bench/experiments/lesion_filter.py --from-json lesions.json   # the analysis again
    .venv/bin/python bench/experiments/lesion_filter.py --dataset WORK/dataset --thick 5 \
        --out lesions5.json  # as 5 mm scans
    .venv/bin/python bench/experiments/lesion_filter.py --dataset WORK/dataset --rules-from lesions.json \
        --real 3Dircadb1.17 --liver LIVER_RUN --tumor TUMOUR_RUN --out real17.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

WEIGHT = 4.0
RULE_FEATURES = ("ml", "slices", "peak", "mean_p", "abs_contrast", "abs_local_contrast", "max_depth_mm", "inside")


def lesion_features(seg, hu: np.ndarray, truth: np.ndarray, spacing) -> list[dict]:
    """Features of every proposed lesion of ``seg`` (a :class:`core.inference.cascade.Segmentation`
    with ``tumour_prob``), and whether it hits a true lesion of ``truth`` (0/1/2 labels)."""
    from scipy import ndimage

    from core.evaluation.metrics import lesion_components
    from core.runtime.labels import LIVER, TUMOUR
    from core.transforms.postprocess import clean_liver
    pred = seg.label == TUMOUR
    liver = (seg.label == LIVER) | pred
    recs, lab = lesion_components(pred, spacing)
    tl, tlab = lesion_components(truth == TUMOUR, spacing)
    liver_med = float(np.median(hu[seg.label == LIVER])) if (seg.label == LIVER).any() else 0.0
    prob = seg.tumour_prob
    liver_net = clean_liver(seg.liver_prob > 0.5) if seg.liver_prob is not None else liver  # the liver stage's mask
    depth = ndimage.distance_transform_edt(liver, sampling=spacing)
    surface = surface_depths(liver, lab, spacing)
    out = []
    for r in recs:
        m = lab == r["_label"]
        inter = np.bincount(tlab[m], minlength=len(tl) + 1)
        inside_t = int(tlab[tuple(np.round(r["centroid"]).astype(int))])
        hits = [t["_label"] for t in tl
                if 2 * inter[t["_label"]] / (t["voxels"] + r["voxels"]) >= 0.2 or inside_t == t["_label"]]
        p = prob[m].astype(np.float32)
        h = hu[m].astype(np.float32)
        box = ndimage.find_objects(m.astype(np.uint8))[0]
        sl = tuple(slice(max(0, s.start - pad), s.stop + pad) for s, pad in zip(box, (1, 4, 4), strict=True))
        shell = ndimage.binary_dilation(m[sl], structure=np.ones((3, 3, 3), bool))
        shell = ndimage.binary_dilation(shell, structure=np.ones((1, 3, 3), bool), iterations=2)
        shell &= ~pred[sl] & liver[sl]
        hs = hu[sl][shell].astype(np.float32)
        out.append({"ml": r["volume_ml"], "slices": int(r["slices"][1] - r["slices"][0] + 1),
                    "diam_mm": r["longest_axial_diameter_mm"], "peak": float(p.max()), "mean_p": float(p.mean()),
                    "mean_hu": float(h.mean()), "contrast": float(h.mean() - liver_med),
                    "local_contrast": float(h.mean() - np.median(hs)) if hs.size > 10 else 0.0,
                    "shell_sd": float(hs.std()) if hs.size > 10 else 0.0,
                    "max_depth_mm": float(depth[m].max()), "surface_depth_mm": surface.get(r["_label"], 0.0),
                    "inside": float(liver_net[m].mean()),
                    "overlap": float(inter[1:].sum() / r["voxels"]),
                    "hit": bool(hits), "lesions_hit": hits})
    return out


def surface_depths(liver: np.ndarray, lab: np.ndarray, spacing) -> dict:
    """{component label: its deepest voxel's depth below the liver's boundary, mm}, as the cascade's
    depth rule measures it (:func:`core.transforms.postprocess.surface_depth`: the boundary halfway
    between the last liver voxel and the first outside one). On 5 mm slices a voxel under an outside
    one lies 2.5 mm deep (``max_depth_mm``: 5 mm); in-plane (0.7 mm) the two differ by 0.35 mm."""
    from scipy import ndimage

    from core.transforms.postprocess import surface_depth
    if not lab.any():
        return {}
    box = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in ndimage.find_objects(liver.astype(np.uint8))[0])
    sub = lab[box]
    pos = np.nonzero(sub)
    best = np.full(int(sub.max()) + 1, -np.inf)
    np.maximum.at(best, sub[pos], surface_depth(liver[box], spacing, pos))
    return {k: float(best[k]) for k in np.unique(sub[pos]).tolist()}


def feature(components: list[dict], name: str) -> np.ndarray:
    """One feature of every component (NaN where missing); ``abs_X`` is the magnitude of ``X``."""
    key = name[4:] if name.startswith("abs_") else name
    v = np.array([c.get(key, np.nan) for c in components], float)
    return np.abs(v) if key != name else v


def flatten(rows: list[dict]) -> list[dict]:
    """Every volume's proposed lesions in one list, each tagged with its volume (``vol``)."""
    return [dict(c, vol=i) for i, r in enumerate(rows) for c in r["components"]]


def lesions_lost(components: list[dict], drop: np.ndarray) -> int:
    """True lesions found before the drop and by none of the kept components after it."""
    found, kept = set(), set()
    for i, c in enumerate(components):
        ids = {(c.get("vol", 0), t) for t in c.get("lesions_hit", [i] if c["hit"] else [])}
        found |= ids
        if not drop[i]:
            kept |= ids
    return len(found - kept)


def score_rules(components: list[dict], weight: float = WEIGHT, top: int = 12) -> list[tuple]:
    """(net, false removed, true lesions lost, hit components lost, hit mL lost, rule) of the best
    single and pair drop rules; net = false removed - ``weight`` x true lesions lost."""
    hit = np.array([c["hit"] for c in components], bool)
    ml = np.array([c["ml"] for c in components])
    feats = {k: feature(components, k) for k in RULE_FEATURES}
    cuts = {k: np.unique(np.quantile(v, np.linspace(0.1, 0.7, 7))) for k, v in feats.items() if np.isfinite(v).all()}
    rules = []

    def add(drop, text):
        f, h, lost = int((drop & ~hit).sum()), int((drop & hit).sum()), lesions_lost(components, drop)
        rules.append((f - weight * lost, f, lost, h, float(ml[drop & hit].sum()), text))

    for k in cuts:
        for t in cuts[k]:
            add(feats[k] < t, f"{k} < {t:.6g}")
    for k1, k2 in itertools.combinations(cuts, 2):
        for t1 in cuts[k1]:
            for t2 in cuts[k2]:
                add((feats[k1] < t1) & (feats[k2] < t2), f"{k1} < {t1:.6g} and {k2} < {t2:.6g}")
    rules.sort(key=lambda r: -r[0])
    return rules[:top]


def apply_rule(components: list[dict], rule: str) -> np.ndarray:
    """Which of ``components`` a rule text of :func:`score_rules` drops (bool per component)."""
    drop = np.ones(len(components), bool)
    for term in rule.split(" and "):
        k, t = term.split(" < ")
        drop &= feature(components, k) < float(t)
    return drop


def report(rows: list[dict]) -> None:
    comps = flatten(rows)
    hit = np.array([c["hit"] for c in comps], bool)
    print(f"\n{len(rows)} volumes: {len(comps)} proposed lesions, {int(hit.sum())} hits, "
          f"{int((~hit).sum())} false")
    print(f"{'feature':20s} {'hits q10 / q50 / q90':>26s} {'false q10 / q50 / q90':>26s}")
    for k in ("ml", "slices", "peak", "mean_p", "contrast", "local_contrast", "max_depth_mm", "inside"):
        v = feature(comps, k)
        qh, qf = np.quantile(v[hit], [0.1, 0.5, 0.9]), np.quantile(v[~hit], [0.1, 0.5, 0.9])
        print(f"{k:20s} {' / '.join(f'{x:7.2f}' for x in qh):>26s} {' / '.join(f'{x:7.2f}' for x in qf):>26s}")
    print(f"\nbest drop rules (net = false removed - {WEIGHT:g} x true lesions lost):")
    print(f"{'net':>5s} {'false removed':>13s} {'lesions lost':>12s} {'hits lost':>9s} {'hit mL lost':>11s}  rule")
    for net, f, lost, h, m, text in score_rules(comps):
        print(f"{net:5.0f} {f:13d} {lost:12d} {h:9d} {m:11.2f}  {text}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", help="an imported 3D-IRCADb-01 dataset (core.datasets.ircadb.import_ircadb)")
    ap.add_argument("--cases", nargs="+", default=["3Dircadb1.9", "3Dircadb1.13"], help="label maps to render")
    ap.add_argument("--models", default=str(Path(__file__).resolve().parents[2] / "resources" / "models"),
                    help="folder with ircadb-liver/ and ircadb-tumor/ (default: the shipped models)")
    ap.add_argument("--seeds", type=int, default=2, help="volumes per case and phase")
    ap.add_argument("--out", help="JSON of every volume's scores and lesion features")
    ap.add_argument("--min-depth", type=float, default=0.0,
                    help="the cascade's TumourFilters.min_depth_mm (default 0: score every proposal, before the "
                         "shipped 3.5 mm rule, as the rules were chosen)")
    ap.add_argument("--min-inside", type=float, default=0.0,
                    help="the cascade's TumourFilters.min_inside (default 0: before the shipped 0.3 rule)")
    ap.add_argument("--thick", type=float, default=0.0, metavar="MM",
                    help="score the rendered volumes as MM-thick slices (slab averages; 0: as rendered)")
    ap.add_argument("--from-json", help="analyse an earlier --out instead of rendering")
    ap.add_argument("--real", metavar="PATIENT", help="confirm on this real CT patient and its proxies instead")
    ap.add_argument("--liver", help="the liver model's run folder (default: --models' ircadb-liver)")
    ap.add_argument("--tumor", dest="tumour", help="the tumour model's run folder, never trained on the scored "
                                                   "patients (default: --models' ircadb-tumor)")
    ap.add_argument("--rules-from", help="with --real: the rendered run's --out whose best rules to apply")
    args = ap.parse_args()
    if args.from_json:
        report(json.loads(Path(args.from_json).read_text()))
        return
    if not args.dataset:
        ap.error("--dataset is required (or --from-json)")
    if args.real:
        if not args.rules_from:
            ap.error("--real needs --rules-from")
        confirm_real(args)
        return
    from core.evaluation.evaluate import case_report
    from core.inference.cascade import TumourFilters, segment
    liver_m, tumour_m = load_models(args, args.cases)
    rows = []
    t = time.perf_counter()
    for v in rendered_volumes(args.dataset, args.cases, args.seeds, args.thick):
        seg = segment(v, liver_m, tumour_m, return_probs=True,
                      tumour_filters=TumourFilters(min_depth_mm=args.min_depth, min_inside=args.min_inside))
        rep = case_report(seg.label, v.label, v.spacing)
        le = rep["lesions"]
        rows.append({"case": v.case, "phase": v.phase, "seed": v.seed, "facts": v.facts, "thick": args.thick,
                     "liver_dice": rep["liver"]["dice"], "tumour_dice": rep["tumor"]["dice"],
                     "lesions": le, "components": lesion_features(seg, v.hu, v.label, v.spacing)})
        print(f"{v.case:13s} {v.phase:12s} seed {v.seed} {v.facts['kernel']:8s} liver {rep['liver']['dice']:.3f} "
              f"tumour {rep['tumor']['dice']:.3f} found {le['hits']}/{le['true_lesions']} "
              f"false {le['false_positives']}  {time.perf_counter() - t:.0f} s", flush=True)
        t = time.perf_counter()
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1))
    report(rows)


def rendered_volumes(dataset, cases, seeds: int, thick: float = 0.0):
    """Each label map of ``cases`` rendered as a whole CT volume in every phase, ``seeds`` volumes
    each (:func:`core.synthetic.volume_ct.render_volume`, seeded by (seed, patient number)); with
    ``thick`` (mm) as a thick-slice scan would show it (slab averages, labels at the slab centres,
    no anatomy). Yields objects with ``case, phase, seed, facts, hu, label, spacing, anatomy``."""
    from types import SimpleNamespace

    from core.datasets.dataset import load_case
    from core.synthetic.synth_ct import PHASES
    from core.synthetic.volume_ct import render_volume
    from core.transforms.zsample import resample_thickness
    for cid in cases:
        case = load_case(dataset, cid)
        for phase in PHASES:
            for seed in range(seeds):
                rng = np.random.default_rng([seed, int(cid.rsplit(".", 1)[-1])])
                hu, facts = render_volume(case.anatomy, case.spacing, rng, phase)
                label, spacing, anatomy = case.label, tuple(case.spacing), case.anatomy
                if thick:
                    hu, label, dz = resample_thickness(hu, label, float(spacing[0]), thick)
                    spacing, anatomy = (dz,) + spacing[1:], None
                yield SimpleNamespace(case=cid, phase=phase, seed=seed, facts=facts, hu=hu, label=label,
                                      spacing=spacing, anatomy=anatomy)


def load_models(args, patients: list[str]):
    """The (liver, tumour) models: ``--liver`` / ``--tumor`` run folders, else ``--models``' defaults.
    A tumour model that trained on a scored patient is refused; a liver model that did is named
    (then only the tumour stage is held out)."""
    from core.model.io import load_seg_model
    liver = load_seg_model(args.liver or Path(args.models) / "ircadb-liver", "liver")
    tumour = load_seg_model(args.tumour or Path(args.models) / "ircadb-tumor", "tumor")
    for m, stage in ((liver, "liver"), (tumour, "tumour")):
        seen = set((m.meta.get("data") or {}).get("train_patients", [])) & set(patients)
        if seen and stage == "tumour":
            raise SystemExit(f"{m.path} trained on {sorted(seen)}: refusing to score it there")
        if seen:
            print(f"note: the liver model trained on {sorted(seen)}: only the tumour stage is held out", flush=True)
    return liver, tumour


def confirm_real(args) -> None:
    """Score a real patient and its proxies; apply the rendered run's best rules to their lesions."""
    from core.datasets.dataset import load_case
    from core.evaluation.evaluate import case_report
    from core.inference.cascade import TumourFilters, segment
    from core.synthetic.acquisition import VARIANTS, acquisition_variant
    liver_m, tumour_m = load_models(args, [args.real])
    rules = [r[-1] for r in score_rules(flatten(json.loads(Path(args.rules_from).read_text())), top=8)]
    rules += [f"max_depth_mm < {t:g}" for t in (3, 4, 5)] + [f"surface_depth_mm < {t:g}" for t in (3, 4, 5)]
    rules += [f"inside < {t:g}" for t in (0.25, 0.5, 0.75)]
    case = load_case(args.dataset, args.real)
    rows = []
    for name in VARIANTS:
        v = acquisition_variant(case, name)
        seg = segment(v, liver_m, tumour_m, return_probs=True,
                      tumour_filters=TumourFilters(min_depth_mm=args.min_depth, min_inside=args.min_inside))
        rep = case_report(seg.label, v.label, v.spacing)
        comps = lesion_features(seg, v.hu, v.label, v.spacing)
        rows.append({"variant": name, "tumour_dice": rep["tumor"]["dice"], "lesions": rep["lesions"],
                     "components": comps})
        le = rep["lesions"]
        print(f"{args.real} {name:20s} liver {rep['liver']['dice']:.3f} tumour {rep['tumor']['dice']:.3f} "
              f"found {le['hits']}/{le['true_lesions']} false {le['false_positives']}", flush=True)
        for c in comps:
            print(f"    {'hit  ' if c['hit'] else 'false'} {c['ml']:7.2f} mL {c['slices']:3d} slices "
                  f"peak {c['peak']:.2f} contrast {c['contrast']:6.1f} local {c['local_contrast']:6.1f} "
                  f"depth {c['max_depth_mm']:5.1f} mm")
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1))
    comps = flatten(rows)
    hit = np.array([c["hit"] for c in comps], bool)
    found = lesions_lost(comps, np.ones(len(comps), bool))
    print(f"\n{args.real}, {len(rows)} variants: {len(comps)} proposed lesions, {int(hit.sum())} hits "
          f"({found} lesions found), {int((~hit).sum())} false. The rendered run's best rules, and simple ones:")
    print(f"{'false removed':>13s} {'lesions lost':>12s} {'hits lost':>9s}  rule")
    for rule in rules:
        drop = apply_rule(comps, rule)
        removed, lost = int((drop & ~hit).sum()), int((drop & hit).sum())
        print(f"{removed:>6d} of {int((~hit).sum()):<4d} {lesions_lost(comps, drop):>4d} of {found:<5d} "
              f"{lost:>3d} of {int(hit.sum()):<3d} {rule}")


if __name__ == "__main__":
    main()
