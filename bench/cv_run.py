"""Speaker-disjoint cross-validation of one training configuration on the prepared images.

    python bench/cv_run.py NAME [key=value ...]      e.g.  python bench/cv_run.py base epochs=5 size=64,128 "augment={'noise':0}"

Writes results/levers/NAME/{fold*/,cv.json,oof_predictions.csv,label_audit.csv}; finished folds are reused."""
import sys, json, time, ast
from dataclasses import fields
from voicegender.train import cross_validate, TrainConfig

def parse(v):
    "A Python literal (`5`, `False`, `(32,64)`, `{'noise':0}`, `32,64` -> a tuple), else the string."
    try: return ast.literal_eval(v)
    except Exception: return v

if __name__ == '__main__':
    name, kw = sys.argv[1], {k: parse(v) for k,v in (a.split('=', 1) for a in sys.argv[2:])}
    kw.setdefault('pretrained', False)
    settings = {f.name for f in fields(TrainConfig)}   # the rest (image_root, folds, splits) says which data
    cfg = TrainConfig(**{k: v for k,v in kw.items() if k in settings})
    t = time.time()
    res = cross_validate(f'results/levers/{name}', cfg, progress=False, **{k: v for k,v in kw.items() if k not in settings})
    print(json.dumps({k: res[k] for k in ['clip_acc_mean','clip_acc_std','clip_acc_per_fold','speakers_correct',
                      'n_speakers','flagged_speakers','clip_acc_without_flagged','always_male','train_seconds']}, indent=1))
    print(f"wall {time.time()-t:.0f} s")
