"""Would a floor on the temperature (T >= 1: calibration may soften the network, never sharpen it) make the answers
more honest on a corpus never heard?

    python bench/calibration_floor.py [LEVER ...]   # default: the shipped recipe's three seeds

Why ask: a fold's temperature is fitted on validation speakers of its training corpora, where the network is nearly
always right, so the fit can end at its bound (T = 0.05 on the speechocean762 folds) and the model then says "100 %
sure" on a corpus it never heard. For each fold of LEVER (`results/crosscorpus/LEVER/foldF`, its model on disk), on
the held-out corpus' adults, with the fold's own T and with max(T, 1):
- ECE and balanced accuracy with one image a clip (the cross-corpus table's rows);
- the same through `predict`'s path (`Predictor`: every 1 s window of the speech, the clip's answer from its windows'
  calibrated probabilities; a clip without speech is a wrong answer), where T also changes the answers.
The same window logits serve both temperatures, and the fold's own T must reproduce the committed through-predict
results (`LEVER_predict`). Writes results/calibration_floor.json."""
import json, sys, copy
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT/'results/crosscorpus'
FLOOR = 1.0

def balanced(p_female:np.ndarray, gender:pd.Series)->float:
    "Mean of female and male recall, answers at 0.5."
    from sklearn.metrics import balanced_accuracy_score
    return float(balanced_accuracy_score((gender == 'female').to_numpy(), p_female >= .5))

def ece(p_female:np.ndarray, gender:pd.Series)->float:
    from voicegender.calibrate import expected_calibration_error
    return expected_calibration_error(np.stack([p_female, 1 - p_female], 1), (gender != 'female').to_numpy().astype(int))

def fold_probe(d:Path)->dict:
    from voicegender.model import load_model
    from voicegender.crosscorpus import model_logits
    from voicegender.calibrate import softmax
    from voicegender.deploy import Predictor
    from voicegender.data import ADULT_AGE
    sc = json.loads((d/'scores.json').read_text()); T = sc['calibration']['temperature']; temps = dict(own=T, floor=max(T, FLOOR))
    t = pd.read_csv(d/'test_predictions.csv'); adult = ~(t.age < ADULT_AGE).to_numpy()
    z = model_logits(load_model(d/'model.safetensors'), t.path.tolist())
    out = dict(fold=sc['fold'], heldout=sc['heldout'][0], temperature=temps, adult_clips=int(adult.sum()))
    for k,T_ in temps.items():
        p = softmax(z, T_)[:, 0]
        out[f'one_image_{k}'] = dict(balanced_accuracy=balanced(p[adult], t.gender[adult]), ece=ece(p[adult], t.gender[adult]))
    pred = Predictor(d/'model.safetensors', temperature=1.0, threshold=0.5, threads=1)
    ps = {k: [] for k in temps}
    for w in t.wav:
        res, work = pred.read_file(w)
        if not work or not work[0]:
            for k in temps: ps[k].append(np.nan)
            continue
        wins, (ims, owner) = work
        zl = pred.model.logits(ims); zw = np.stack([zl[owner == i].mean(0) for i in range(len(wins))])
        for k,T_ in temps.items():
            r = copy.deepcopy(res); pred.clip_answer(r, wins, softmax(zw, T_), False); ps[k].append(r['probabilities']['female'])
    through = pd.read_csv(OUT/f'{d.parent.name}_predict'/d.name/'test_predictions.csv')
    own = np.array(ps['own']); got = ~np.isnan(own)
    assert np.allclose(own[got], through.p_female.to_numpy()[got], atol=2e-4), f"{d}: the own-T replay differs from {through}"
    for k in temps:
        p = np.array(ps[k]); p = np.where(np.isnan(p), (t.gender != 'female').astype(float), p)   # no speech: the wrong answer
        out[f'through_predict_{k}'] = dict(balanced_accuracy=balanced(p[adult], t.gender[adult]), ece=ece(p[adult], t.gender[adult]))
    return out

def main(levers:list):
    rows = []
    for lever in levers:
        for d in sorted((OUT/lever).glob('fold*')):
            r = dict(lever=lever, **fold_probe(d)); rows.append(r)
            print(f"{lever} {r['heldout']}: T {r['temperature']['own']:.2f} -> {r['temperature']['floor']:.2f}; ECE one image "
                  f"{r['one_image_own']['ece']:.1%} -> {r['one_image_floor']['ece']:.1%}, through predict "
                  f"{r['through_predict_own']['ece']:.1%} -> {r['through_predict_floor']['ece']:.1%} (balanced "
                  f"{r['through_predict_own']['balanced_accuracy']:.1%} -> {r['through_predict_floor']['balanced_accuracy']:.1%})", flush=True)
    summary = {f'{path}_{k}': dict(ece_mean=float(np.mean([r[f'{path}_{k}']['ece'] for r in rows])),
                                   ece_max=float(np.max([r[f'{path}_{k}']['ece'] for r in rows])),
                                   balanced_mean=float(np.mean([r[f'{path}_{k}']['balanced_accuracy'] for r in rows])))
               for path in ('one_image', 'through_predict') for k in ('own', 'floor')}
    for k,v in summary.items(): print(f"{k}: ECE mean {v['ece_mean']:.1%}, max {v['ece_max']:.1%}; balanced mean {v['balanced_mean']:.1%}")
    (ROOT/'results/calibration_floor.json').write_text(json.dumps(dict(floor=FLOOR, folds=rows, summary=summary), indent=1))

if __name__ == '__main__':
    main(sys.argv[1:] or ['level_mic_cmn_r18', 'level_mic_cmn_r18_seed1', 'level_mic_cmn_r18_seed2'])
