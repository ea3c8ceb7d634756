"""Test-time augmentation on a finished CV run: mean probability over time-shifted copies of each test image.

    python bench/tta.py RUN [--shifts 0,-10,10] [--images ROOT]

The shifts (frames, 10 ms each) roll the image like `MFCCAugment`'s training shift. Reads results/levers/RUN/fold*/model.pkl;
writes results/levers/RUN/tta.json. Inference only: no test speaker was used to pick anything here."""
import argparse, json
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image
from fastai.learner import load_learner
from voicegender.train import predict_images, clip_metrics, fold_items, image_items
from voicegender.data import load_splits

def tta_probs(learn, images, shifts):
    "Mean p_female over the shifted copies."
    return np.mean([predict_images(learn, [np.roll(im, s, axis=1) for im in images])[:,0] for s in shifts], axis=0)

if __name__ == '__main__':
    p = argparse.ArgumentParser(); p.add_argument('run'); p.add_argument('--shifts', default='0,-10,10,-5,5')
    p.add_argument('--images', default=None); a = p.parse_args()
    shifts = [int(s) for s in a.shifts.split(',')]
    run = Path('results/levers')/a.run; res = {}
    for n,sh in [('plain', [0]), ('tta', shifts)]: res[n] = []
    oof = {n: [] for n in res}
    for fd in sorted(run.glob('fold*')):
        cfg = json.loads((fd/'config.json').read_text())
        learn = load_learner(fd/'model.pkl')
        test = fold_items(image_items(a.images or cfg['image_root']), load_splits(cfg['splits']), cfg['fold']).query("role == 'test'")
        ims = [np.array(Image.open(f)) for f in test.path]
        for n,sh in [('plain', [0]), ('tta', shifts)]:
            d = test.assign(p_female=tta_probs(learn, ims, sh)); oof[n].append(d)
            res[n].append(clip_metrics(d)['accuracy'])
        print(fd.name, {n: round(v[-1], 4) for n,v in res.items()}, flush=True)
    out = {n: dict(clip_acc_mean=float(np.mean(v)), clip_acc_std=float(np.std(v, ddof=1)), clip_acc_per_fold=v,
                   **{k: clip_metrics(pd.concat(oof[n]))[k] for k in ('speakers_correct', 'n_speakers')}) for n,v in res.items()}
    out['shifts'] = shifts; out['images'] = a.images
    (run/'tta.json').write_text(json.dumps(out, indent=1)); print(json.dumps(out, indent=1))
