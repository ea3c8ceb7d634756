"""Accuracy on room- and telephone-distorted test clips: do the cross-validated models survive reverberation and a
G.711-like channel? Each fold's exported model scores its own test speakers, once clean and once distorted.

    voicegender prepare --data ../shared/data/audiomnist_az --out .tmp/mfc_mix --maps .tmp/maps_mix --distort mix
    python bench/robustness.py size32x64 s32_distort [--images .tmp/mfc_mix]

Runs are results/levers/<NAME> folders made by bench/cv_run.py (their model.pkl files are not committed, so this
needs the runs on this machine). Writes results/robustness.json."""
import argparse, json
from pathlib import Path
import numpy as np
from voicegender.core import atomic_write
from voicegender.train import evaluate_run

if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('runs', nargs='+'); ap.add_argument('--images', default='.tmp/mfc_mix')
    ap.add_argument('--out', default='results/robustness.json'); a = ap.parse_args()
    out = Path(a.out); res = json.loads(out.read_text()) if out.exists() else {}
    recipe = json.loads((Path(a.images)/'recipe.json').read_text())
    for name in a.runs:
        folds = sorted(Path(f'results/levers/{name}').glob('fold*/model.pkl'))
        if len(folds) < 5: raise SystemExit(f"results/levers/{name} has {len(folds)} exported fold models, not 5: run bench/cv_run.py first")
        clean = [json.loads((f.parent/'metrics.json').read_text())['accuracy'] for f in folds]
        dist = [evaluate_run(f.parent, pngs=None, images=a.images)['accuracy'] for f in folds]
        res[name] = dict(images=a.images, recipe=recipe, clean_per_fold=clean, distorted_per_fold=dist,
                         clean_mean=float(np.mean(clean)), clean_sd=float(np.std(clean, ddof=1)),
                         distorted_mean=float(np.mean(dist)), distorted_sd=float(np.std(dist, ddof=1)))
        print(f"{name}: clean {np.mean(clean):.1%} +- {np.std(clean, ddof=1):.1%}, "
              f"distorted ({recipe.get('distort')}) {np.mean(dist):.1%} +- {np.std(dist, ddof=1):.1%}")
    atomic_write(out, json.dumps(res, indent=1))
