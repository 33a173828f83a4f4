"""Compare a follow-up study with its baseline: one call, one typed result, one stable JSON form.

:func:`compare_studies` checks that both studies are of one patient, reads each study's contrast
phase, measures the lesions of both, registers the follow-up to the baseline, matches the lesions
and assesses RECIST 1.1 and mRECIST (:mod:`.recist`, whose docstring states the rules and what the
software leaves to the reader). :class:`Comparison` holds all of it; :meth:`Comparison.to_json` is
what ``compare.json`` holds, under the keys of :data:`JSON_KEYS` (documented in docs/FOLLOWUP.md;
new keys may be added, none renamed or removed without changing :data:`FORMAT`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..runtime.edition import require_registration
from ..runtime.jobs import CancelToken, ProgressFn, check, report
from ..study.phase import PhaseEstimate, detect_phase
from .diameters import LesionMeasure, measure_lesions
from .matching import LesionMatch, match_lesions
from .recist import NOT_DECIDED, Response, assess, not_assessed
from .registration import Registration, register
from .timepoint import TimePoint, check_same_patient

FORMAT = "liverseg-compare/1"
JSON_KEYS = ("format", "notice", "baseline", "followup", "registration", "lesions", "matches", "recist",
             "mrecist", "tumor_volume", "not_decided", "warnings", "seconds")
NOTICE = ("Research use only. Not for clinical decisions: lesions are segmented by models trained on small public "
          "datasets, matched and measured automatically; a qualified reader checks every lesion, target and "
          "category, and decides what the software does not (listed under 'not decided').")


@dataclass(frozen=True)
class StudyPart:
    """One time point as compared: who and what it is, its phase and its lesions."""

    info: dict
    phase: PhaseEstimate
    lesions: tuple[LesionMeasure, ...]
    tumour_ml: float
    liver_ml: float

    def to_json(self) -> dict:
        return {**self.info, "phase": self.phase.to_json(), "liver_ml": round(self.liver_ml, 2),
                "tumor_ml": round(self.tumour_ml, 4), "lesion_count": len(self.lesions)}


@dataclass(frozen=True)
class Comparison:
    """Everything a follow-up comparison found.

    Attributes:
        baseline, followup: each time point (:class:`StudyPart`).
        registration: the transform and its figures.
        matches: the lesion groups (same, new, gone, merged, split, regrouped).
        recist, mrecist: the responses by RECIST 1.1 and mRECIST, with their targets and basis.
        warnings: what could not be checked or was allowed on purpose.
        seconds: the wall time of the comparison.
    """

    baseline: StudyPart
    followup: StudyPart
    registration: Registration
    matches: tuple[LesionMatch, ...]
    recist: Response
    mrecist: Response
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def tumour_change_ml(self) -> float:
        return self.followup.tumour_ml - self.baseline.tumour_ml

    @property
    def tumour_change_pct(self) -> float | None:
        b = self.baseline.tumour_ml
        return None if b <= 0 else 100.0 * self.tumour_change_ml / b

    def match_of(self, when: str, lesion_id: int) -> LesionMatch | None:
        """The group holding lesion ``lesion_id`` of the "baseline" or the "followup"."""
        key = "baseline_ids" if when == "baseline" else "followup_ids"
        return next((m for m in self.matches if lesion_id in getattr(m, key)), None)

    @property
    def slice_mm(self) -> float:
        """The baseline's slice spacing (what makes a lesion measurable)."""
        return float(self.baseline.info["spacing_mm"][0])

    def with_targets(self, targets: Sequence[int] | None) -> Comparison:
        """The same comparison with the reader's ``targets`` (baseline lesion ids, at most 2; None:
        the software's): RECIST 1.1 and mRECIST assessed again, nothing else recomputed (a pure,
        fast call: the GUI's target checkboxes).

        Raises:
            FollowupError: a target the baseline does not have, or more than 2.
        """
        bl, fl = self.baseline.lesions, self.followup.lesions
        recist = assess("recist", bl, fl, self.matches, self.slice_mm, targets)
        mrecist = self.mrecist
        if self.baseline.phase.phase == "arterial" and self.followup.phase.phase == "arterial":
            mrecist = assess("mrecist", bl, fl, self.matches, self.slice_mm, targets)
        return replace(self, recist=recist, mrecist=mrecist)

    def to_json(self) -> dict:
        """The JSON form (keys: :data:`JSON_KEYS`, in that order)."""
        pct = self.tumour_change_pct

        def rows(part: StudyPart, when: str) -> list[dict]:
            out = []
            for les in part.lesions:
                m = self.match_of(when, les.id)
                out.append({**les.to_json(), "match": m.status if m else None,
                            "target_recist": les.id in {t.baseline_id for t in self.recist.targets}
                            if when == "baseline"
                            else any(les.id in t.followup_ids for t in self.recist.targets)})
            return out

        d = {"format": FORMAT, "notice": NOTICE, "baseline": self.baseline.to_json(),
             "followup": self.followup.to_json(), "registration": self.registration.to_json(),
             "lesions": {"baseline": rows(self.baseline, "baseline"), "followup": rows(self.followup, "followup")},
             "matches": [m.to_json() for m in self.matches], "recist": self.recist.to_json(),
             "mrecist": self.mrecist.to_json(),
             "tumor_volume": {"baseline_ml": round(self.baseline.tumour_ml, 4),
                              "followup_ml": round(self.followup.tumour_ml, 4),
                              "change_ml": round(self.tumour_change_ml, 4),
                              "change_pct": None if pct is None else round(pct, 2)},
             "not_decided": list(NOT_DECIDED), "warnings": list(self.warnings), "seconds": round(self.seconds, 3)}
        return d


def _phase(tp: TimePoint) -> PhaseEstimate:
    if tp.phase is not None:
        return PhaseEstimate(tp.phase, None, None, None, "given by the user")  # type: ignore[arg-type]
    return detect_phase(tp.hu, tp.spacing, tp.label, tp.direction)


def _part(tp: TimePoint, phase: PhaseEstimate, lesions: Sequence[LesionMeasure]) -> StudyPart:
    voxel_ml = float(tp.spacing[0] * tp.spacing[1] * tp.spacing[2]) / 1000.0
    liver = float((tp.label > 0).sum()) * voxel_ml
    return StudyPart(tp.info(), phase, tuple(lesions), sum(les.volume_ml for les in lesions), liver)


def compare_studies(baseline: TimePoint, followup: TimePoint, targets: Sequence[int] | None = None,
                    allow_different_patients: bool = False, affine: bool = True,
                    progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> Comparison:
    """Compare ``followup`` with ``baseline`` (each with its label).

    Args:
        targets: baseline lesion ids the reader chose as targets (both criteria); None: the software's.
        allow_different_patients: compare studies whose patient ID or name differ (on purpose).
        affine: let the registration try an affine transform after the rigid one.

    Raises:
        FollowupError: different patients (unless allowed), a label that does not fit, bad targets.
        RegistrationError: the studies cannot be registered.
        Cancelled: ``cancel`` was set.
    """
    require_registration()
    t0 = time.perf_counter()
    warnings = check_same_patient(baseline, followup, allow_different_patients)
    steps = 5
    report(progress, "compare", 0, steps, "contrast phase")
    phases = (_phase(baseline), _phase(followup))
    arterial = tuple(p.phase == "arterial" for p in phases)
    check(cancel)
    report(progress, "compare", 1, steps, "measuring lesions")
    bl, bc = measure_lesions(baseline.hu, baseline.label, baseline.spacing, baseline.grid, viable=arterial[0])
    check(cancel)
    fl, fc = measure_lesions(followup.hu, followup.label, followup.spacing, followup.grid, viable=arterial[1])
    check(cancel)
    report(progress, "compare", 2, steps, "registering")
    reg = register(baseline.hu, baseline.grid, followup.hu, followup.grid, baseline.label > 0, followup.label > 0,
                   affine=affine, cancel=cancel)
    report(progress, "compare", 3, steps, "matching lesions")
    matches = match_lesions(bl, bc, baseline.grid, fl, fc, followup.grid, reg)
    check(cancel)
    report(progress, "compare", 4, steps, "response criteria")
    slice_mm = float(baseline.spacing[0])
    recist = assess("recist", bl, fl, matches, slice_mm, targets)
    if all(arterial):
        mrecist = assess("mrecist", bl, fl, matches, slice_mm, targets)
    else:
        which = [w for w, a, p in zip(("baseline", "follow-up"), arterial, phases, strict=True) if not a]
        mrecist = not_assessed("mrecist", "mRECIST measures enhancement in the arterial phase; the "
                               + " and the ".join(f"{w} is {p.phase}" for w, p in zip(
                                   which, [p for a, p in zip(arterial, phases, strict=True) if not a], strict=True)))
    report(progress, "compare", steps, steps)
    return Comparison(_part(baseline, phases[0], bl), _part(followup, phases[1], fl), reg, tuple(matches),
                      recist, mrecist, tuple(warnings), time.perf_counter() - t0)
