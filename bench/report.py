"""Print the README's result tables (markdown) from what the benchmark scripts saved in results/.

    python bench/report.py"""
import json, glob
from pathlib import Path
import pandas as pd
from voicegender.train import speaker_bootstrap, clip_metrics

LEVERS = {  # results/levers/<name>: (what changed, the run it is compared with fold by fold)
    'base': ("reference MFCC images (12 x 98 gray) squished to 64 x 128, one-cycle 5 epochs (lr 2e-3, bs 64), MFCC augmentation "
             "(time shift, time mask, gain on c0, noise), class-weighted loss, label smoothing 0.1", None),
    'rel_deltas': ("images: c0 relative to the loudest frame, RGB = (MFCC, delta, delta-delta)", 'base'),
    'size48x96': ("input 48 x 96 instead of 64 x 128", 'base'),
    'size32x64': ("input 32 x 64 instead of 64 x 128", 'base'),
    's32_noaug': ("32 x 64, no MFCC augmentation", 'size32x64'),
    's32_nogainnoise': ("32 x 64, augmentation without gain and noise (time shift and mask only)", 'size32x64'),
    's32_distort': ("32 x 64, + room/telephone-distorted copies swapped in for half the training images", 'size32x64'),
    's32_trim': ("32 x 64, images of VAD-trimmed clips (Silero), train and test", 'size32x64'),
    's32_noweights': ("32 x 64, unweighted loss (no class weights)", 'size32x64'),
    's32_nosmooth': ("32 x 64, no label smoothing", 'size32x64'),
    's32_mixup': ("32 x 64, + mixup", 'size32x64'),
    's32_reference': ("32 x 64, the reference notebook's schedule: fine_tune, 2 epochs head-only + 1 unfrozen", 'size32x64'),
    's32_epochs10': ("32 x 64, 10 epochs instead of 5", 'size32x64'),
    's32_seed1': ("32 x 64, another seed (1 instead of 42): how much a rerun moves", 'size32x64'),
    's32_trim_distort': ("32 x 64, trimmed + distorted copies (the previous default, 5 epochs)", 'size32x64'),
    's32_trim_distort_e10': ("trimmed + distorted copies, 10 epochs instead of 5: **the default**", 's32_trim_distort'),
    'c40_trim_distort_e10': ("40 MFCC coefficients instead of 12 (images 40 x 98, input 40 x 64), 10 epochs, trimmed + copies", 's32_trim_distort_e10'),
    'c40m80_trim_distort_e10': ("40 coefficients from 80 mel bands instead of 40, 10 epochs, trimmed + copies", 'c40_trim_distort_e10'),
    'c40m80_trim_distort_e10_seed1': ("the same as c40m80_trim_distort_e10, seed 1: how much a rerun moves", 'c40m80_trim_distort_e10'),
    'c40m80_trim_distort_e10_seed2': ("the same, seed 2", 'c40m80_trim_distort_e10'),
    'c40m80_trim_distort_e15': ("the same as c40m80_trim_distort_e10, 15 epochs instead of 10", 'c40m80_trim_distort_e10'),
    'c80m80_trim_distort_e10': ("80 coefficients of 80 mel bands (images 80 x 98, input 80 x 64), 10 epochs, trimmed + copies", 'c40m80_trim_distort_e10'),
    'c80m80_trim_distort_e10_seed1': ("the same as c80m80_trim_distort_e10, seed 1", 'c80m80_trim_distort_e10'),
    's32_trim_distort_e10_tov': ("the default, trained on each fold's validation speakers too (47 speakers instead of 35, "
                                 "as the baselines train)", 's32_trim_distort_e10'),
    'c40m80_trim_distort_e10_tov': ("the 40 x 80 option, trained on the validation speakers too", 'c40m80_trim_distort_e10'),
    'c40m80_trim_distort_e10_tov_seed1': ("the same, seed 1 (declared before either ran)", 'c40m80_trim_distort_e10_seed1'),
    's32_trim_distort_e10_x13': ("the default, speaker 13 (the flagged label) kept out of training (`--exclude-speakers 13`); "
                                 "still tested, labelled male", 's32_trim_distort_e10'),
    'c40m80_trim_distort_e10_x13': ("the 40 x 80 option, speaker 13 kept out of training; still tested, labelled male",
                                    'c40m80_trim_distort_e10'),
    'c40m80_trim_distort_e10_x13_seed1': ("the same, seed 1 (declared before either ran)", 'c40m80_trim_distort_e10_seed1'),
    'c40m80_trim_distort_e10_x13_seed2': ("the same, seed 2 (declared after seeds 42 and 1 had run)", 'c40m80_trim_distort_e10_seed2'),
    'c40m80_trim_distort_e10_nested': ("the 40 x 80 option, each fold without the speakers its own training-side audit flags "
                                       "(Resemblyzer + LR: 13 in folds 1-4, 55 in fold 0)", 'c40m80_trim_distort_e10'),
    'c40m80_trim_distort_e10_nested_seed1': ("the same, seed 1", 'c40m80_trim_distort_e10_seed1'),
    'c40m80_trim_distort_e10_nested_seed2': ("the same, seed 2", 'c40m80_trim_distort_e10_seed2'),
}

def tta_row(name):
    "The same fold models, scored on the mean probability over time-shifted test images (bench/tta.py)."
    f = Path(f'results/levers/{name}/tta.json')
    if not f.exists(): return ''
    r = json.loads(f.read_text()); import numpy as np
    d = np.array(r['tta']['clip_acc_per_fold']) - np.array(r['plain']['clip_acc_per_fold'])
    return (f"| {name} + TTA | mean probability over time shifts {r['shifts']} frames of each test image (no retraining) | "
            f"{r['tta']['clip_acc_mean']:.1%} +- {r['tta']['clip_acc_std']:.1%} | | {d.mean()*100:+.1f} ({(d > 0).sum()}/{len(d)} folds up) | "
            f"{r['tta']['speakers_correct']}/{r['tta'].get('n_speakers', '?')} | | | | |").replace('%', ' %')

def _cv(name): f = Path(f'results/levers/{name}/cv.json'); return json.loads(f.read_text()) if f.exists() else None

def _oof(name): return pd.read_csv(f'results/levers/{name}/oof_predictions.csv')

def _interval(lo_hi, signed=False):
    f = '{:+.1f}' if signed else '{:.1f}'
    return f"{f.format(lo_hi[0]*100)} to {f.format(lo_hi[1]*100)}"

def levers_table():
    "One row a finished run; the change against its reference run is the mean of the per-fold differences."
    import numpy as np
    rows = []
    for name, (what, ref) in LEVERS.items():
        r, r_ref = _cv(name), ref and _cv(ref)
        if r is None: continue
        o, delta = _oof(name), '-'
        if r_ref:
            d = np.array(r['clip_acc_per_fold']) - np.array(r_ref['clip_acc_per_fold'])
            delta = f"{d.mean()*100:+.1f} ({(d > 0).sum()}/{len(d)} folds up; {_interval(speaker_bootstrap(o, _oof(ref)), True)})"
        rows.append(f"| {name} | {what} | {r['clip_acc_mean']:.1%} +- {r['clip_acc_std']:.1%} | "
                    f"{_interval(speaker_bootstrap(o))} | {delta} | "
                    f"{r['speakers_correct']}/{r['n_speakers']} | {r['balanced_accuracy']:.1%} | "
                    f"{', '.join(map(str, r['flagged_speakers'])) or '-'} | {r['clip_acc_without_flagged']:.1%} | "
                    f"{r['train_seconds']/60:.0f} |")
    head = ("| run | what changed | clip accuracy (mean +- sd over 5 folds) | 95% interval, speakers redrawn | "
            "change vs its reference, points (95% interval, paired) | speakers right | "
            "balanced accuracy | flagged labels | clip accuracy without flagged | training minutes (5 folds) |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    return (head + '\n' + '\n'.join(rows)).replace('%', ' %')

def ensemble_oof(names)->pd.DataFrame:
    "Out-of-fold predictions of the runs' mean probability per clip (one name: that run's own)."
    ps = [_oof(n).assign(clip=lambda d: d.path.map(lambda p: Path(p).stem)).set_index('clip').sort_index() for n in names]
    assert all(len(p) == len(ps[0]) and (p.index == ps[0].index).all() for p in ps)
    return ps[0].assign(p_female=sum(p.p_female for p in ps)/len(ps))

def ensemble_row(names=('base', 'rel_deltas')):
    "Mean of the runs' probabilities per clip (same folds, same test speakers): the lever 'ensemble'."
    import numpy as np
    oof = ensemble_oof(names)
    accs = _fold_accs(oof)
    sd = np.std(accs, ddof=1)
    m = clip_metrics(oof)
    d = np.mean(accs) - _cv(names[0])['clip_acc_mean']
    return (f"| ensemble | mean probability of {' + '.join(names)} (no extra training) | {np.mean(accs):.1%} +- {sd:.1%} | "
            f"{_interval(speaker_bootstrap(oof))} | {d*100:+.1f} vs the first ({_interval(speaker_bootstrap(oof, _oof(names[0])), True)}) | "
            f"{m['speakers_correct']}/{m['n_speakers']} | {m['balanced_accuracy']:.1%} | | | |").replace('%', ' %')

def baseline_oof(cache:str, make, columns=None)->pd.DataFrame|None:
    "Out-of-fold p(female) of a baseline refitted on the same folds from its feature cache (no audio read); None without it."
    from voicegender.baselines import cached_features, fit_folds
    from voicegender.data import load_splits
    f, clips = Path(cache), pd.read_csv('results/clips.csv')
    if not f.exists(): return None
    F, _ = cached_features(clips.path, None, f, progress=False)   # every clip cached: nothing is computed
    clips = clips[clips.path.isin(F.index)].reset_index(drop=True)
    sp = load_splits(); t = sp[sp.role == 'test']; fold = dict(zip(t.speaker, t.fold))
    r = fit_folds(F.loc[clips.path, columns or F.columns].values, clips, sp, make)
    return clips.assign(p_female=r['prob'][:, 0], fold=clips.speaker.map(fold))

def resemblyzer_oof(mlp:bool=False)->pd.DataFrame|None:
    "Resemblyzer + LR (or + MLP fold-ensemble), refitted on its cached embeddings (`bench/baselines.py` makes them)."
    from voicegender.baselines import lr_model, mlp_model, FoldEnsemble
    return baseline_oof('results/embeddings_resemblyzer.npz', (lambda: FoldEnsemble(mlp_model(), k=5)) if mlp else lr_model)

ACOUSTIC_CACHE = 'results/acoustic_features.csv'   # pitch, spectral and MFCC statistics per clip (`bench/baselines.py`)

def acoustic_oofs()->dict:
    "The acoustic-statistics baselines (37 features), refitted: {name: out-of-fold predictions}; empty without the cache."
    from voicegender.baselines import lr_model, mlp_model, gbm_model, FoldEnsemble, ACOUSTIC_COLUMNS
    makes = {'MLP fold-ensemble': lambda: FoldEnsemble(mlp_model(), k=5), 'gradient boosting': gbm_model, 'LR': lr_model}
    if not Path(ACOUSTIC_CACHE).exists(): return {}
    return {k: baseline_oof(ACOUSTIC_CACHE, m, ACOUSTIC_COLUMNS) for k,m in makes.items()}

def fusion_lines(runs, acoustic:dict):
    "Late fusion, no weights tuned: the mean of a run's p(female) and an acoustic-statistics model's, clip by clip."
    for n in runs:
        if _cv(n) is None: continue
        o = ensemble_oof((n,)); rows = []
        for k, a in acoustic.items():
            pa = a.set_index(a.path.map(lambda p: Path(p).stem)).p_female.loc[o.index]
            fu = o.assign(p_female=(o.p_female + pa)/2); m = clip_metrics(fu)
            rows.append(f"+ {k} {_mean_acc(fu):.1%}, {m['speakers_correct']}/{m['n_speakers']} "
                        f"({(_mean_acc(fu) - _mean_acc(o))*100:+.1f}; {_interval(speaker_bootstrap(fu, o), True)})")
        print(f"{n} {_mean_acc(o):.1%}: {'; '.join(rows)}".replace('%', ' %'))

def pitch_lines(k:int=4):
    "Median F0 (pyin) per speaker, from the acoustic cache: the highest men and the lowest women, where the labels meet."
    from voicegender.baselines import cached_features
    if not Path(ACOUSTIC_CACHE).exists(): return
    clips = pd.read_csv('results/clips.csv')
    A = cached_features(clips.path, None, ACOUSTIC_CACHE, progress=False)[0].join(clips.set_index('path')[['speaker', 'gender']])
    f0 = A.groupby('speaker').agg(gender=('gender', 'first'), f0=('f0_median', 'median')).dropna()
    for g, asc, end in (('male', False, 'highest'), ('female', True, 'lowest')):
        d = f0[f0.gender == g].f0.sort_values(ascending=asc)
        print(f"{g} speakers' median F0 {d.min():.0f} to {d.max():.0f} Hz ({len(d)} with voiced frames); the {end}: "
              + ', '.join(f"{s} {v:.0f} Hz" for s, v in d.head(k).items()))

def inner_audit_lines():
    "The label audit redone inside each fold's training side only (5 speaker groups, LR): which speakers a fold could drop without its test speakers."
    import numpy as np
    from sklearn.model_selection import GroupKFold
    from voicegender.baselines import cached_features, lr_model, gender_index, ACOUSTIC_COLUMNS
    from voicegender.train import label_audit
    from voicegender.data import load_splits
    clips, sp = pd.read_csv('results/clips.csv'), load_splits()
    features = {'acoustic statistics + LR': (ACOUSTIC_CACHE, ACOUSTIC_COLUMNS),
                'Resemblyzer + LR': ('results/embeddings_resemblyzer.npz', None)}
    for name, (cache, cols) in features.items():
        if not Path(cache).exists(): continue
        F = cached_features(clips.path, None, cache, progress=False)[0]
        X, y, flags = F.loc[clips.path, cols or F.columns].values, gender_index(clips.gender), []
        for f in sorted(sp.fold.unique()):
            m = clips.speaker.isin(sp[(sp.fold == f) & (sp.role != 'test')].speaker).values
            p, g = np.zeros(m.sum()), clips.speaker.values[m]
            for a, b in GroupKFold(5).split(X[m], y[m], g): p[b] = lr_model().fit(X[m][a], y[m][a]).predict_proba(X[m][b])[:, 0]
            au = label_audit(clips[m].assign(p_female=p))
            flags.append(f"fold {f}: " + (', '.join(f"{r.speaker} ({r.other_share:.0%})" for r in au[au.flagged].itertuples()) or 'none'))
        print(f"{name}, flagged among each fold's training speakers: {'; '.join(flags)}".replace('%', ' %'))

def target_lines(runs, rz:pd.DataFrame|None, baseline:str='Resemblyzer + LR'):
    "Each run (a name, or a tuple of names: their ensemble) against the target: its interval, and its lead over `rz` on the same speaker draws."
    if rz is not None: print(f"{baseline}, refitted on the cached embeddings: {_mean_acc(rz):.1%}".replace('%', ' %'))
    for n in runs:
        names = n if isinstance(n, tuple) else (n,)
        if any(_cv(m) is None for m in names): continue
        o = ensemble_oof(names); m = clip_metrics(o)
        lead = '' if rz is None else (f"; lead over {baseline} {(_mean_acc(o) - _mean_acc(rz))*100:+.1f} points "
                                      f"({_interval(speaker_bootstrap(o, rz), True)})")
        print(f"{' + '.join(names)}: {_mean_acc(o):.1%} (95% interval, speakers redrawn: {_interval(speaker_bootstrap(o))}), "
              f"{m['speakers_correct']}/{m['n_speakers']} speakers{lead}".replace('%', ' %'))

def _fold_accs(oof): return [clip_metrics(d)['accuracy'] for _,d in oof.groupby('fold')]
def _mean_acc(oof): a = _fold_accs(oof); return sum(a) / len(a)

def resnet_row(name='base', cpu_ms=None):
    "Our ResNet-34 as a row of results/baselines.csv, scored by the baselines' own code on the same folds."
    import numpy as np
    from voicegender.baselines import score_probs, result_row, update_results_row
    from voicegender.data import load_splits
    clips = pd.read_csv('results/clips.csv')
    oof = pd.read_csv(f'results/levers/{name}/oof_predictions.csv')
    p = dict(zip(oof.path.map(lambda s: Path(s).stem), oof.p_female))
    pf = clips.path.map(lambda s: p.get(Path(s).stem, np.nan)).values
    s = score_probs(np.stack([pf, 1 - pf], 1), clips, load_splits())
    cv = json.loads(Path(f'results/levers/{name}/cv.json').read_text())
    epochs = json.loads(Path(f'results/levers/{name}/fold0/config.json').read_text())['epochs']
    row = result_row(f"ResNet-34 on MFCC images ({name}, from scratch)", s, params=21_813_056, pretrained=False, cpu_ms=cpu_ms,
                     train_seconds=cv['train_seconds']/len(cv['folds']),
                     notes=f"{name}: see README (lever table); {epochs} epochs one-cycle on 1 CPU thread (machine shared)")
    update_results_row('results/baselines.csv', row)
    return row

def robustness_table(f='results/robustness.json'):
    "Clean vs room/telephone-distorted test clips, per run (bench/robustness.py)."
    if not Path(f).exists(): return ''
    rows = [f"| {n} | {LEVERS.get(n, ('',))[0]} | {r['clean_mean']:.1%} +- {r['clean_sd']:.1%} | "
            f"{r['distorted_mean']:.1%} +- {r['distorted_sd']:.1%} |" for n,r in json.loads(Path(f).read_text()).items()]
    return ("| run | what | clean test clips | distorted test clips |\n|---|---|---|---|\n" + '\n'.join(rows)).replace('%', ' %')

def audit_table(name='base'):
    a = pd.read_csv(f'results/levers/{name}/label_audit.csv').head(5)
    return a.to_markdown(index=False, floatfmt='.2f') if hasattr(a, 'to_markdown') else a.to_string(index=False)

if __name__ == '__main__':
    lat = json.loads(Path('results/bench_latency.json').read_text()) if Path('results/bench_latency.json').exists() else {}
    print(resnet_row('s32_trim_distort_e10', cpu_ms=lat.get('median_ms', {}).get('total')))
    f = Path('results/bench_latency_c40m80.json')
    ms = json.loads(f.read_text())['median_ms']['total'] if f.exists() else None
    print(resnet_row('c40m80_trim_distort_e10', cpu_ms=ms))
    print(resnet_row('c40m80_trim_distort_e10_x13', cpu_ms=ms))   # the same network and input: the same latency
    print(levers_table())
    for row in filter(None, map(tta_row, LEVERS)): print(row)
    for pair in [('base', 'rel_deltas'), ('size32x64', 's32_seed1'), ('c40m80_trim_distort_e10', 'c40m80_trim_distort_e10_seed1'),
                 ('c40m80_trim_distort_e10', 'c40m80_trim_distort_e10_seed1', 'c40m80_trim_distort_e10_seed2'),
                 ('c40m80_trim_distort_e10', 'c80m80_trim_distort_e10'), ('c40m80_trim_distort_e15', 'c80m80_trim_distort_e10'),
                 ('c40m80_trim_distort_e10_seed1', 'c80m80_trim_distort_e10_seed1')]:
        if all(Path(f'results/levers/{n}/cv.json').exists() for n in pair): print(ensemble_row(pair))
    strong = ['s32_trim_distort_e10', 'c40m80_trim_distort_e10', 'c40m80_trim_distort_e15', 'c80m80_trim_distort_e10',
              'c80m80_trim_distort_e10_seed1', 'c40m80_trim_distort_e10_tov', 'c40m80_trim_distort_e10_tov_seed1',
              's32_trim_distort_e10_x13', 'c40m80_trim_distort_e10_x13', 'c40m80_trim_distort_e10_x13_seed1',
              'c40m80_trim_distort_e10_x13_seed2', 'c40m80_trim_distort_e10_nested', 'c40m80_trim_distort_e10_nested_seed1',
              'c40m80_trim_distort_e10_nested_seed2',
              ('c40m80_trim_distort_e10', 'c80m80_trim_distort_e10'),
              ('c40m80_trim_distort_e10_seed1', 'c80m80_trim_distort_e10_seed1')]
    print(); target_lines(strong, resemblyzer_oof())
    print(); target_lines(strong, resemblyzer_oof(mlp=True), 'Resemblyzer + MLP fold-ensemble')
    print(); fusion_lines(['s32_trim_distort_e10', 'c40m80_trim_distort_e10', 'c40m80_trim_distort_e10_seed1',
                           'c40m80_trim_distort_e10_seed2'], acoustic_oofs())
    print(); pitch_lines()
    print(); inner_audit_lines()
    print(); print(robustness_table()); print()
    for f in ['results/bench_prepare.json', 'results/bench_size.json', 'results/bench_train.json']:
        if Path(f).exists(): print(f, json.loads(Path(f).read_text()), '\n')
    if Path('results/baselines.csv').exists(): print(pd.read_csv('results/baselines.csv').to_string(index=False))
    for n in LEVERS:
        if Path(f'results/levers/{n}/label_audit.csv').exists(): print(n); print(pd.read_csv(f'results/levers/{n}/label_audit.csv').head(6).to_string(index=False))
