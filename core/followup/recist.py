"""Target lesions and response categories by RECIST 1.1 and mRECIST, for the liver.

Versions applied (and cited in every report):

* RECIST 1.1: Eisenhauer EA et al., "New response evaluation criteria in solid tumours: revised
  RECIST guideline (version 1.1)", Eur J Cancer 2009;45:228-247.
* mRECIST: Lencioni R, Llovet JM, "Modified RECIST (mRECIST) assessment for hepatocellular
  carcinoma", Semin Liver Dis 2010;30:52-60.

What the software does, for the liver only (every lesion it sees is a liver lesion):

* measurable: longest axial diameter >= 10 mm on CT with slices of 5 mm or less; with thicker slices,
  >= twice the slice thickness (RECIST 1.1, section 3.1.1). mRECIST also asks the target to enhance
  in the arterial phase: its viable diameter must be above zero;
* targets: at most 2 per organ (here: 2 in all), the largest first (longest diameter; for mRECIST the
  viable diameter). The reader may choose others (baseline lesion ids); the categories then rest on
  those and say so;
* the follow-up diameter of a target: its matched lesion's (:mod:`.matching`); 0 when it is gone; the
  sum of the fragments' when it split; when targets merged, the merged lesion's diameter counts for the
  first of them and 0 for the others (RECIST 1.1, appendix I);
* categories (follow-up against baseline, the baseline being the smallest sum so far with two time
  points): CR all targets gone (mRECIST: no intratumoral arterial enhancement left in any target);
  PD a sum 20 % or more above the baseline's and (RECIST 1.1 only) at least 5 mm more, or any
  unequivocal new lesion; PR a sum 30 % or more below; SD otherwise. mRECIST (2010) sets no 5 mm
  minimum for progression, so none is applied to it;
* new lesions: a follow-up lesion matched to no baseline lesion with a longest diameter of at least
  :data:`NEW_LESION_MM` counts as new (mRECIST asks 1 cm for a new hepatic nodule); smaller ones are
  listed as equivocal and do not make a progression.

What the software does not decide (the reader does): non-target lesions and their unequivocal
progression, lesions outside the liver, lymph nodes, equivocal new lesions (the small ones above, and
whether any detected new lesion is tumour at all), and the overall response, which combines all of
these. It compares two time points only: no nadir across more visits, no confirmation of response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .diameters import LesionMeasure
from .matching import LesionMatch
from .timepoint import FollowupError

RECIST11 = "RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228-247)"
MRECIST = "mRECIST (Lencioni & Llovet, Semin Liver Dis 2010;30:52-60)"
MEASURABLE_MM = 10.0
THIN_SLICE_MM = 5.0
MAX_TARGETS = 2  # per organ; every lesion here is in the liver
PR_DECREASE = 0.30
PD_INCREASE = 0.20
PD_MIN_MM = {"recist": 5.0, "mrecist": 0.0}
NEW_LESION_MM = 10.0
NOT_DECIDED = (
    "non-target lesions and their unequivocal progression",
    "lesions outside the liver and lymph nodes",
    "equivocal new lesions: those under the new-lesion size, and whether a detected new lesion is tumour at all",
    "the overall response (targets, non-targets and new lesions together) and its confirmation",
)
Criteria = Literal["recist", "mrecist"]
Category = Literal["CR", "PR", "SD", "PD", "NE"]


@dataclass(frozen=True)
class TargetRow:
    """One target: its baseline diameter and what became of it."""

    baseline_id: int
    baseline_mm: float
    followup_ids: tuple[int, ...]
    followup_mm: float
    status: str  # the match's status ("same", "gone", ...)

    def to_json(self) -> dict:
        return {"baseline_id": self.baseline_id, "baseline_mm": round(self.baseline_mm, 2),
                "followup_ids": list(self.followup_ids), "followup_mm": round(self.followup_mm, 2),
                "status": self.status}


@dataclass(frozen=True)
class Response:
    """The category by one set of criteria and what it rests on."""

    criteria: Criteria
    version: str
    category: Category
    basis: tuple[str, ...]
    targets: tuple[TargetRow, ...]
    chosen_by: Literal["software", "reader"]
    baseline_sum_mm: float
    followup_sum_mm: float
    new_lesions: tuple[int, ...]  # follow-up ids of unequivocal new lesions
    equivocal_new: tuple[int, ...]  # follow-up ids of new lesions under NEW_LESION_MM

    @property
    def change_mm(self) -> float:
        return self.followup_sum_mm - self.baseline_sum_mm

    @property
    def change_pct(self) -> float | None:
        return None if self.baseline_sum_mm <= 0 else 100.0 * self.change_mm / self.baseline_sum_mm

    def to_json(self) -> dict:
        pct = self.change_pct
        return {"criteria": self.criteria, "version": self.version, "category": self.category,
                "basis": list(self.basis), "targets_chosen_by": self.chosen_by,
                "targets": [t.to_json() for t in self.targets], "baseline_sum_mm": round(self.baseline_sum_mm, 2),
                "followup_sum_mm": round(self.followup_sum_mm, 2), "change_mm": round(self.change_mm, 2),
                "change_pct": None if pct is None else round(pct, 2), "new_lesions": list(self.new_lesions),
                "equivocal_new_lesions": list(self.equivocal_new)}


def min_measurable_mm(slice_mm: float) -> float:
    """The smallest measurable longest diameter on CT of that slice thickness (RECIST 1.1, 3.1.1)."""
    return MEASURABLE_MM if slice_mm <= THIN_SLICE_MM else 2.0 * slice_mm


def _diameter(les: LesionMeasure, criteria: Criteria) -> float:
    return les.longest_mm if criteria == "recist" else (les.viable_mm or 0.0)


def choose_targets(lesions: Sequence[LesionMeasure], slice_mm: float, criteria: Criteria = "recist",
                   override: Sequence[int] | None = None) -> tuple[tuple[int, ...], list[str]]:
    """(target ids, notes): the software's choice (see the module), or the reader's ``override``.

    Raises:
        FollowupError: an override names a lesion the baseline does not have, or more than 2.
    """
    by_id = {les.id: les for les in lesions}
    least = min_measurable_mm(slice_mm)
    if override is not None:
        ids = tuple(dict.fromkeys(int(i) for i in override))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise FollowupError(f"targets {missing}: the baseline has lesions {sorted(by_id) or 'none'}")
        if len(ids) > MAX_TARGETS:
            raise FollowupError(f"targets {list(ids)}: RECIST 1.1 allows at most {MAX_TARGETS} target lesions "
                                "per organ")
        notes = [f"targets {', '.join(map(str, ids)) or 'none'} chosen by the reader"]
        for i in ids:
            if by_id[i].longest_mm < least:
                notes.append(f"target {i} ({by_id[i].longest_mm:.1f} mm) is under the measurable {least:.0f} mm")
            if criteria == "mrecist" and not by_id[i].viable_mm:
                notes.append(f"target {i} shows no arterial enhancement at baseline")
        return ids, notes
    ok = [les for les in lesions if les.longest_mm >= least and (criteria == "recist" or (les.viable_mm or 0) > 0)]
    ok.sort(key=lambda les: (-_diameter(les, criteria), les.id))
    ids = tuple(les.id for les in ok[:MAX_TARGETS])
    what = "longest diameter" if criteria == "recist" else "viable diameter, enhancing in the arterial phase"
    notes = [f"measurable: longest diameter >= {least:.0f} mm (slices {slice_mm:.1f} mm); "
             f"{len(ok)} measurable lesion(s), the {len(ids)} largest by {what} are the targets"]
    return ids, notes


def target_rows(targets: Sequence[int], baseline: Sequence[LesionMeasure], followup: Sequence[LesionMeasure],
                matches: Sequence[LesionMatch], criteria: Criteria) -> tuple[TargetRow, ...]:
    """Each target's baseline and follow-up diameter by the rules of the module."""
    b = {les.id: les for les in baseline}
    f = {les.id: les for les in followup}
    counted: set[int] = set()  # follow-up lesions already counted for an earlier (merged) target
    rows = []
    for t in targets:
        m = next((g for g in matches if t in g.baseline_ids), None)
        fids = tuple(j for j in (m.followup_ids if m else ()) if j not in counted)
        counted.update(fids)
        rows.append(TargetRow(t, _diameter(b[t], criteria), fids, sum(_diameter(f[j], criteria) for j in fids),
                              m.status if m else "gone"))
    return tuple(rows)


def categorise(criteria: Criteria, rows: Sequence[TargetRow], new: Sequence[int]) -> tuple[Category, list[str]]:
    """The category of the targets' sums and the new lesions, and the reasons (module's rules)."""
    base = sum(r.baseline_mm for r in rows)
    follow = sum(r.followup_mm for r in rows)
    pd_mm = PD_MIN_MM[criteria]
    sums = f"sum of {'viable ' if criteria == 'mrecist' else ''}diameters {base:.1f} mm -> {follow:.1f} mm"
    if new:
        return "PD", [f"new lesion(s): follow-up lesion {', '.join(map(str, new))} (>= {NEW_LESION_MM:.0f} mm, "
                      f"matched to no baseline lesion)", sums]
    if not rows:
        return "NE", ["no target lesion at baseline: the targets cannot be assessed"]
    if base <= 0:  # the reader's targets, none enhancing (mRECIST): nothing to fall from or grow on
        return "NE", [f"{sums}: the targets measure nothing at baseline and cannot be assessed"]
    change = follow - base
    if change >= PD_INCREASE * base - 1e-9 and change >= pd_mm - 1e-9:
        extra = f" and {change:.1f} mm (>= {pd_mm:.0f} mm)" if pd_mm else ""
        return "PD", [f"{sums}: +{100 * change / base:.1f} % (>= {100 * PD_INCREASE:.0f} %){extra}"]
    if follow == 0:
        what = "all target lesions disappeared" if criteria == "recist" else (
            "no intratumoral arterial enhancement left in any target lesion")
        return "CR", [what, sums]
    if -change >= PR_DECREASE * base - 1e-9:
        return "PR", [f"{sums}: {100 * change / base:.1f} % (a decrease of >= {100 * PR_DECREASE:.0f} %)"]
    pct = f"{100 * change / base:+.1f} %"
    why = f"neither -{100 * PR_DECREASE:.0f} % nor +{100 * PD_INCREASE:.0f} %"
    return "SD", [f"{sums}: {pct} ({why}{' with +' + format(pd_mm, '.0f') + ' mm' if pd_mm else ''})"]


def assess(criteria: Criteria, baseline: Sequence[LesionMeasure], followup: Sequence[LesionMeasure],
           matches: Sequence[LesionMatch], slice_mm: float, override: Sequence[int] | None = None) -> Response:
    """Targets, their diameters at both time points and the category by ``criteria``."""
    ids, notes = choose_targets(baseline, slice_mm, criteria, override)
    rows = target_rows(ids, baseline, followup, matches, criteria)
    f = {les.id: les for les in followup}
    fresh = [j for g in matches if g.status == "new" for j in g.followup_ids]
    new = tuple(j for j in fresh if f[j].longest_mm >= NEW_LESION_MM)
    equivocal = tuple(j for j in fresh if f[j].longest_mm < NEW_LESION_MM)
    category, why = categorise(criteria, rows, new)
    if equivocal:
        why.append(f"equivocal new lesion(s) {', '.join(map(str, equivocal))} (< {NEW_LESION_MM:.0f} mm): "
                   f"not counted; the reader decides")
    return Response(criteria, RECIST11 if criteria == "recist" else MRECIST, category, tuple(notes + why), rows,
                    "reader" if override is not None else "software", sum(r.baseline_mm for r in rows),
                    sum(r.followup_mm for r in rows), new, equivocal)


def not_assessed(criteria: Criteria, reason: str) -> Response:
    """A response that could not be assessed (mRECIST without arterial-phase images)."""
    return Response(criteria, RECIST11 if criteria == "recist" else MRECIST, "NE", (reason,), (), "software",
                    0.0, 0.0, (), ())
