#!/usr/bin/env python
"""Figures of the shipped model on its held-out speakers (results/heldout_speakers.csv; trained from scratch on CPU).

    python scripts/shipped_figures.py            # needs ../shared/data and bench/crosscorpus.py ship having run

pngs/shipped_confusion.png: adults of the held-out speakers, clip answers (p_female >= 0.5).
pngs/shipped_reliability.png: calibrated confidence against accuracy (ECE), held-out adults.
pngs/shipped_level.png: p(female) of the same held-out clips at -20, 0 and +20 dB (peaks kept below full scale),
  from `voicegender.deploy.Predictor` with the shipped model: points on the diagonal mean the level changes nothing.
"""
import json
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parents[1]
def run_dir():
    "The shipped model's training run (bench/crosscorpus.py ship LEVER writes results/crosscorpus/shipped_LEVER)."
    from voicegender.model import load_model, shipped_model
    return ROOT/'results/crosscorpus'/f"shipped_{load_model(shipped_model()).settings['training']['lever']}"

def _save(fig, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    from voicegender.core import atomic_path
    with atomic_path(path) as tmp: fig.savefig(tmp, dpi=130, format='png')

def main():
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    from voicegender.core import GENDERS, load_audio
    from voicegender.data import ADULT_AGE
    from voicegender.train import confusion_png
    from voicegender.deploy import Predictor
    from voicegender.calibrate import expected_calibration_error
    from sklearn.metrics import confusion_matrix
    pred = pd.read_csv(run_dir()/'test_predictions.csv')
    adults = pred[~(pred.age < ADULT_AGE)]
    yhat = np.where(adults.p_female >= 0.5, 'female', 'male')
    cm = confusion_matrix(adults.gender, yhat, labels=list(GENDERS))
    confusion_png(cm, ROOT/'pngs/shipped_confusion.png', f"shipped model, held-out adults\n{len(adults)} clips, "
                  f"{adults.speaker.nunique()} speakers; balanced {np.mean([cm[0,0]/cm[0].sum(), cm[1,1]/cm[1].sum()]):.1%}")
    # reliability
    p = np.stack([adults.p_female, 1 - adults.p_female], 1); y = np.array([GENDERS.index(g) for g in adults.gender])
    from sklearn.calibration import calibration_curve
    conf, ok = p.max(1), p.argmax(1) == y
    acc, mc = calibration_curve(ok, conf, n_bins=10, strategy='quantile')
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.plot([0.5, 1], [0.5, 1], ls='--', c='grey', lw=1, label='perfect calibration')
    ax.plot(mc, acc, 'o-', label=f"ECE {expected_calibration_error(p, y):.3f}")
    ax.set(xlabel='confidence (calibrated top probability)', ylabel='accuracy', title='shipped model, held-out adults')
    ax.legend(fontsize=8); fig.tight_layout(); _save(fig, ROOT/'pngs/shipped_reliability.png'); plt.close(fig)
    # level invariance
    pr = Predictor(threshold=0.5)
    clips = adults.drop_duplicates('speaker').head(40)
    rows = []
    for w in clips.wav:
        y = load_audio(w); y = y/max(np.abs(y).max(), 1e-9)*0.09          # +20 dB stays below full scale
        ps = [pr.predict_audio(y*g)['probabilities'] for g in (0.1, 1.0, 10.0)]
        if all(ps): rows.append([q['female'] for q in ps])
    r = np.array(rows)
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.plot([0, 1], [0, 1], ls='--', c='grey', lw=1)
    ax.scatter(r[:, 1], r[:, 0], s=14, label='-20 dB'); ax.scatter(r[:, 1], r[:, 2], s=14, marker='x', label='+20 dB')
    d = np.abs(r - r[:, 1:2]).max(1)
    ax.set(xlabel='p(female) at the clip\'s level (0 dB)', ylabel='p(female) at -20 / +20 dB',
           title=f"{len(r)} held-out clips: max |change| {d.max():.3f}\nsame label: {np.mean(((r >= .5) == (r[:, 1:2] >= .5)).all(1)):.0%}")
    ax.legend(fontsize=8); fig.tight_layout(); _save(fig, ROOT/'pngs/shipped_level.png'); plt.close(fig)
    out = dict(clips=len(r), max_abs_change=float(d.max()), mean_abs_change=float(d.mean()),
               same_label=float(np.mean(((r >= .5) == (r[:, 1:2] >= .5)).all(1))))
    (ROOT/'results/shipped_level.json').write_text(json.dumps(out, indent=1)); print(out)

if __name__ == '__main__': main()
