"""One study end to end as a user waits for it: the whole ``liverseg predict`` process.

Runs ``liverseg predict STUDY --out X.nii.gz --report R.json`` ``--repeat`` times (a fresh process
each time: start, imports, load the DICOM series, both default models, post-processing, measuring,
NIfTI written) with the bundled default models and the automatic engine, and prints the medians:
the whole process's wall time, the parts the report gives (network calls, pre/post-processing),
the ratio whole process / network time (goal <= 1.25) and whether Keras or TensorFlow was imported
(goal: never, when ONNX Runtime runs both models). Goal: whole process <= 3 s on the 2-core CPU.

The study is patient 17 of 3D-IRCADb-01 (119 x 512 x 512) from ../shared, or ``--dicom DIR``.
``--models LABEL=LIVER_DIR,TUMOR_DIR ...`` times several model sets side by side instead (runs
interleaved, one of each in turn, so that a noisy machine slows them alike) and prints each set's
medians and its ratio to the first. ``LABEL=LIVER,TUMOR@CHECKOUT`` runs that set's ``liverseg predict``
from another checkout of this repository (e.g. a ``git worktree`` of an older commit, same venv), so
that code and models of two versions are timed side by side.

    .venv/bin/python bench/benchmarks/predict_bench.py [--repeat 5] [--dicom DIR] [--engine auto]
    .venv/bin/python bench/benchmarks/predict_bench.py \
        --models today=resources/models/ircadb-liver,resources/models/ircadb-tumor \
        new=WORK/liver,WORK/tumor
    git worktree add --detach OLD COMMIT; M=resources/models
    .venv/bin/python bench/benchmarks/predict_bench.py --models then=OLD/$M/ircadb-liver,OLD/$M/ircadb-tumor@OLD \
        now=$M/ircadb-liver,$M/ircadb-tumor
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from study17 import study_folder, study_parser  # noqa: E402

HEAVY = ("keras", "tensorflow")


def run_once(study: Path, tmp: Path, engine: str, models: tuple[str, str] | None = None,
             root: Path = ROOT) -> dict:
    out, rep = tmp / "seg.nii.gz", tmp / "report.json"
    for p in (out, rep):
        p.unlink(missing_ok=True)
    named = ["--liver-model", models[0], "--tumor-model", models[1]] if models else []
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "app", "predict", str(study), "--out", str(out),
                        "--report", str(rep), "--engine", engine] + named, cwd=root, capture_output=True,
                       text=True, timeout=600)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"liverseg predict failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    imported = {line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    r = json.loads(rep.read_text())
    return {"wall": wall, "timings": r["timings_s"], "engines": r["engine"]["engines"],
            "heavy": sorted(m for m in HEAVY if m in imported), "liver_ml": r["liver_ml"], "tumor_ml": r["tumor_ml"]}


def main() -> None:
    ap = study_parser(__doc__)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--models", nargs="+", metavar="LABEL=LIVER,TUMOR", help="model sets to time side by side")
    args = ap.parse_args()
    if args.models:
        return compare(args)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        study, _ = study_folder(tmp / "study", args.dicom)
        run_once(study, tmp, args.engine)  # warm the OS file cache
        runs = [run_once(study, tmp, args.engine) for _ in range(args.repeat)]
    med = lambda f: statistics.median(f(r) for r in runs)  # noqa: E731
    wall = med(lambda r: r["wall"])
    net = med(lambda r: r["timings"].get("liver_net", 0) + r["timings"].get("tumor_net", 0))
    cascade = med(lambda r: r["timings"].get("total", 0))
    print(f"study {study.name}: {args.repeat} runs, medians; engines {runs[0]['engines']}")
    for key in ("liver_pre", "liver_net", "liver_post", "tumor_pre", "tumor_net", "tumor_post", "liver_cut"):
        print(f"  {key:12s} {med(lambda r, key=key: r['timings'].get(key, 0)):6.2f} s")
    print(f"  cascade      {cascade:6.2f} s")
    print(f"  whole process (start, load, cascade, measure, NIfTI) {wall:6.2f} s   goal <= 3 s")
    print(f"  ratio whole process / network time  {wall / net:.2f}   goal <= 1.25")
    print(f"  ratio cascade / network time        {cascade / net:.2f}")
    print(f"  liver {runs[0]['liver_ml']:.1f} mL, tumour {runs[0]['tumor_ml']:.2f} mL (every run the same: "
          f"{len({(r['liver_ml'], r['tumor_ml']) for r in runs}) == 1})")
    heavy = sorted({m for r in runs for m in r["heavy"]})
    print(f"  Keras/TensorFlow imported: {', '.join(heavy) if heavy else 'no'}")


def compare(args) -> None:
    sets, roots = {}, {}
    for m in args.models:
        label, dirs = m.split("=", 1)
        dirs, _, root = dirs.partition("@")
        liver, tumour = dirs.split(",")
        sets[label] = (str(Path(liver).resolve()), str(Path(tumour).resolve()))
        roots[label] = Path(root).resolve() if root else ROOT
        if not (roots[label] / "app" / "__main__.py").is_file():
            raise SystemExit(f"{roots[label]}: not a checkout of this repository (no app/__main__.py)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        study, _ = study_folder(tmp / "study", args.dicom)
        for label, models in sets.items():  # warm the OS file cache (and each checkout's bytecode)
            run_once(study, tmp, args.engine, models, roots[label])
        runs = {label: [] for label in sets}
        for _ in range(args.repeat):
            for label, models in sets.items():
                runs[label].append(run_once(study, tmp, args.engine, models, roots[label]))
    first = None
    print(f"study {study.name}: {args.repeat} interleaved runs per model set, medians")
    for label, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        net = statistics.median(r["timings"].get("liver_net", 0) + r["timings"].get("tumor_net", 0) for r in rs)
        first = first or wall
        print(f"  {label:12s} whole process {wall:6.2f} s  network {net:5.2f} s  ratio to {next(iter(runs))} "
              f"{wall / first:.2f}  liver {rs[0]['liver_ml']:.1f} mL  tumour {rs[0]['tumor_ml']:.2f} mL  "
              f"engines {rs[0]['engines']}" + (f"  code {roots[label]}" if roots[label] != ROOT else ""))


if __name__ == "__main__":
    main()
