"""Test-time augmentation on a finished CV run: mean probability over time-shifted copies of each test image.

    python bench/tta.py RUN [--shifts 0,-10,10,-5,5] [--images ROOT]

The shifts (frames, 10 ms each) roll the image like `MFCCAugment`'s training shift. Reads the weights-only models
results/levers/RUN/fold*/model.safetensors (+ model.json; never a pickle); writes results/levers/RUN/tta.json.
Inference only: no test speaker was used to pick anything here."""
import argparse, json
from pathlib import Path

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('run', help="a run under results/levers/ whose fold*/ folders hold model.safetensors and config.json")
    p.add_argument('--shifts', default='0,-10,10,-5,5')
    p.add_argument('--images', default=None); a = p.parse_args()
    import numpy as np, pandas as pd
    from PIL import Image
    from voicegender.model import load_model
    from voicegender.train import clip_metrics, fold_items, image_items
    from voicegender.data import load_splits
    from voicegender.core import atomic_write
    shifts = sorted({0, *(int(s) for s in a.shifts.split(','))}, key=abs)   # 0 first: the plain score
    run = Path('results/levers')/a.run
    oof = {'plain': [], 'tta': []}
    for fd in sorted(run.glob('fold*')):
        cfg = json.loads((fd/'config.json').read_text())
        model = load_model(fd/'model.safetensors')
        test = fold_items(image_items(a.images or cfg['image_root']), load_splits(cfg['splits']), cfg['fold']).query("role == 'test'")
        ims = [np.array(Image.open(f)) for f in test.path]
        p_f = [model.probs([np.roll(im, s, axis=1) for im in ims])[:,0] for s in shifts]   # one pass a shift; column 0: female
        oof['plain'].append(test.assign(p_female=p_f[0], fold=fd.name)); oof['tta'].append(test.assign(p_female=np.mean(p_f, 0), fold=fd.name))
        print(fd.name, {n: round(clip_metrics(v[-1])['accuracy'], 4) for n,v in oof.items()}, flush=True)
    out = {}
    for n,v in oof.items():
        accs = [clip_metrics(d)['accuracy'] for d in v]; pooled = clip_metrics(pd.concat(v))
        out[n] = dict(clip_acc_mean=float(np.mean(accs)), clip_acc_std=float(np.std(accs, ddof=1)), clip_acc_per_fold=accs,
                      speakers_correct=pooled['speakers_correct'], n_speakers=pooled['n_speakers'])
    out['shifts'] = shifts; out['images'] = a.images
    atomic_write(run/'tta.json', json.dumps(out, indent=1)); print(json.dumps(out, indent=1))
