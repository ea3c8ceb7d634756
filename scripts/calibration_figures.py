#!/usr/bin/env python
"""Calibration figures of a run: reliability before/after temperature scaling, and accuracy against coverage.

    python scripts/calibration_figures.py results/<run>            # calibrates first if calibration.json is missing
    python scripts/calibration_figures.py results/<run> --refit    # fit T and the threshold again
    python scripts/calibration_figures.py results/<run> --refit --model results/<run>/other.safetensors

Reads results/<run>/calibration.json and calibration_logits.csv (written by `voicegender.calibrate.calibrate`: logits of
the fold's validation and test speakers' images) and writes pngs/calibration.png and pngs/coverage.png. T and the
threshold are fitted on the validation speakers only; the test speakers are what the figures judge them on.
"""
import argparse, json, sys
from pathlib import Path
from voicegender.calibrate import TARGET_ACCURACY, MIN_COVERAGE


def _save(fig, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    from voicegender.core import atomic_path
    with atomic_path(path) as tmp: fig.savefig(tmp, dpi=130, format='png')


def reliability(ax, probs, y, n_bins, title):
    "Top-label reliability: accuracy against confidence, per equal-width bin (sklearn's calibration_curve)."
    import numpy as np
    from sklearn.calibration import calibration_curve
    from voicegender.calibrate import expected_calibration_error
    conf, ok = probs.max(1), (probs.argmax(1) == y)
    acc, mean_conf = calibration_curve(ok, conf, n_bins=n_bins, strategy='uniform')
    ax.plot([0.5, 1], [0.5, 1], ls='--', c='grey', lw=1, label='perfect calibration')
    ax.plot(mean_conf, acc, 'o-', label=f"ECE {expected_calibration_error(probs, y, n_bins):.3f}")
    ax.hist(conf, bins=np.linspace(0.5, 1, n_bins//2 + 1), weights=np.full(len(conf), 0.4/len(conf)), bottom=0.5,
            color='lightgrey', zorder=0)
    ax.set(xlim=(0.5, 1.01), ylim=(0.45, 1.02), xlabel='confidence (top probability)', ylabel='accuracy', title=title)
    ax.legend(fontsize=8, loc='upper left')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('run', help="results/<run> (with model.safetensors, model.json and config.json)")
    p.add_argument('--model', help="the weights-only model to calibrate, NAME.safetensors with NAME.json beside it "
                                   "(default: <run>/model.safetensors); a .pkl is refused")
    p.add_argument('--refit', action='store_true', help="run calibrate() even if calibration.json exists")
    p.add_argument('--out', default='pngs', help="folder for calibration.png and coverage.png (default: pngs/)")
    p.add_argument('--target-accuracy', type=float, default=TARGET_ACCURACY)
    p.add_argument('--min-coverage', type=float, default=MIN_COVERAGE)
    a = p.parse_args(argv)
    import numpy as np, pandas as pd, matplotlib
    matplotlib.use('Agg'); import matplotlib.pyplot as plt
    from voicegender.core import GENDERS
    from voicegender.calibrate import calibrate, softmax, coverage_curve, CALIBRATION_FILE
    run = Path(a.run)
    if a.refit or not (run/CALIBRATION_FILE).exists() or not (run/'calibration_logits.csv').exists():
        calibrate(run, a.target_accuracy, a.min_coverage, model=a.model)
    cal = json.loads((run/CALIBRATION_FILE).read_text())
    df = pd.read_csv(run/'calibration_logits.csv')
    T, thr, n_bins = cal['temperature'], cal['threshold'], cal.get('n_bins', 15)
    parts = {r: (df[df.role == r][[f'logit_{g}' for g in GENDERS]].values,
                 np.array([GENDERS.index(g) for g in df[df.role == r].gender])) for r in ('valid', 'test')}
    z, y = parts['test'] if len(parts['test'][1]) else parts['valid']
    who = 'test' if len(parts['test'][1]) else 'validation'

    fig, axs = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    reliability(axs[0], softmax(z), y, n_bins, f"{who} speakers, raw softmax (T = 1)")
    reliability(axs[1], softmax(z, T), y, n_bins, f"{who} speakers, T = {T:.2f} (fitted on validation)")
    fig.suptitle(f"{run}: calibration ({len(y)} clips)", fontsize=10); fig.tight_layout()
    _save(fig, Path(a.out)/'calibration.png'); plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for role, (zr, yr) in parts.items():
        if not len(yr): continue
        c = coverage_curve(softmax(zr, T), yr)
        ax.plot(c['coverage'], c['accuracy'], label=f"{role} speakers ({len(yr)} clips)")
        at = np.flatnonzero(c['thresholds'] >= thr)[0]
        ax.plot(c['coverage'][at], c['accuracy'][at], 'ko', ms=5)
    ax.axhline(cal['target_accuracy'], c='grey', ls=':', lw=1, label=f"target accuracy {cal['target_accuracy']:.0%}")
    ax.set(xlabel='coverage (share of clips answered)', ylabel='accuracy on answered clips', xlim=(0, 1.02),
           title=f"'uncertain' below {thr:.2f} (black dots)")
    ax.legend(fontsize=8); fig.tight_layout()
    _save(fig, Path(a.out)/'coverage.png'); plt.close(fig)
    t = cal.get('test') or {}
    print(json.dumps(dict(run=str(run), temperature=T, threshold=thr, rule=cal['rule'], valid=cal['valid'], test=t), indent=1))
    print(f"wrote {Path(a.out)/'calibration.png'} and {Path(a.out)/'coverage.png'}", file=sys.stderr)


if __name__ == '__main__': sys.exit(main())
