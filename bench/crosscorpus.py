"""Leave-one-corpus-out: train the ResNet on two corpora, score the third, for each lever; the baselines and the peer
on the same clips; results/crosscorpus.json and the README table.

    python bench/crosscorpus.py prepare            # images of every recipe the levers use (.tmp/cc/...), the splits
    python bench/crosscorpus.py train LEVER        # the 3 folds of one lever (resumable), results/crosscorpus/LEVER/
    python bench/crosscorpus.py windows            # every 1 s window of the training clips as `predict` cuts them (the `_win` levers' images)
    python bench/crosscorpus.py baselines          # acoustic statistics + LR/GBM (also without pyin), Resemblyzer + LR, same folds and clips
    python bench/crosscorpus.py table              # results/crosscorpus.json + docs/crosscorpus.md (peer: results/peer_inaseg.csv)
    python bench/crosscorpus.py ship LEVER         # the shipped model: LEVER's recipe on all corpora except held-out speakers
    python bench/crosscorpus.py noise LEVER        # is LEVER + Resemblyzer fusion ahead of LEVER alone beyond the noise?
    python bench/crosscorpus.py noise3 LEVER       # would a third source (the YIN statistics' GBM) help LEVER's Resemblyzer fusion?
    python bench/crosscorpus.py noise3 LEVER_predict --predict-input   # the same as `predict --fusion` runs it
    python bench/crosscorpus.py ship_fusion        # the heads of `predict --fusion` (Resemblyzer + LR, YIN GBM), on the shipped split
    python bench/crosscorpus.py cost               # ms a clip of each fused part (shipped model, Resemblyzer, acoustic features)
    python bench/crosscorpus.py pooling LEVER_predict  # the fusion's pooling rule: mean of probabilities or of log-odds (accuracy, ECE)
    python bench/crosscorpus.py window_pooling LEVER   # the same question for a clip's 1 s windows
    python bench/crosscorpus.py predict LEVER      # LEVER's fold models scored through `predict`'s path (every 1 s window of the speech)
    python bench/crosscorpus.py groups             # failure groups: recall by pitch band, age band and BAVED emotion level
    python bench/crosscorpus.py compare A B        # recipe A's three-seed ensemble against B's, test speakers redrawn
    python bench/crosscorpus.py audit              # label-audit suspects: adults that pitch and the peer both call the other gender
    python bench/crosscorpus.py coverage LEVER     # the 'uncertain' threshold on a corpus never heard: the fold's own, one fitted on other corpora, none

Corpora: ../shared/data/{audiomnist_az,speechocean762,baved} (or $VOICEGENDER_CORPORA, colon-separated). Every
network is trained from scratch (no ImageNet weights can be fetched on the machine that produced the README).
"""
import os, sys, json, argparse, subprocess, time
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CORPORA = os.environ.get('VOICEGENDER_CORPORA', ':'.join(str(ROOT.parent/'shared/data'/c) for c in
                                                           ('audiomnist_az', 'speechocean762', 'baved'))).split(':')
WORK, OUT = ROOT/'.tmp/cc', ROOT/'results/crosscorpus'
SPLITS = ROOT/'results/splits_loco.csv'
AUDIT = ROOT/'results/label_audit_corpora.csv'   # `audit`: per adult speaker, the judges' answers and `flagged`
HOLDOUT = ROOT/'results/splits_holdout.csv'   # the shipped model's split; its test speakers: results/heldout_speakers.csv
# recipe name -> `voicegender prepare` options (images in .tmp/cc/<recipe>, distorted copies in .tmp/cc/<recipe>_<kind>)
RECIPES = {'c40m80': ['--n-mfcc', '40', '--n-mels', '80'],
           'c40m80_level': ['--n-mfcc', '40', '--n-mels', '80', '--level'],
           'c40m80_level_cmn': ['--n-mfcc', '40', '--n-mels', '80', '--level', '--cmn'],
           'c80m80_level_cmn': ['--n-mfcc', '80', '--n-mels', '80', '--level', '--cmn']}
# lever -> (recipe, distortion kind of the swapped-in copies, the `TrainConfig` settings that differ from its defaults,
#           and optionally n_train: clips a training speaker, default 16, audited: leave the `audit`'s suspects out of training,
#           and windows: train on every 1 s window of those clips (`windows`), not on their loudest second)
BASE = dict(pretrained=False, size=(40, 64))
LEVERS = {
    'pooled_c40m80_mix': ('c40m80', 'mix', BASE),                          # the AZ recipe, pooled: the starting point
    'level_mic': ('c40m80_level', 'mic', BASE),                            # gain removed, microphone/room/line copies
    'level_mic_cmn': ('c40m80_level_cmn', 'mic', BASE),                    # + cepstral mean normalisation
    'level_mic_e20': ('c40m80_level', 'mic', {**BASE, 'epochs': 20}),      # longer training
    'level_mic_cmn_seed1': ('c40m80_level_cmn', 'mic', {**BASE, 'seed': 1}),  # the shipped recipe again, another seed: training noise
    'level_mic_cmn_seed2': ('c40m80_level_cmn', 'mic', {**BASE, 'seed': 2}),  # and a third seed
    'level_mic_cmn_e20': ('c40m80_level_cmn', 'mic', {**BASE, 'epochs': 20}),  # the shipped recipe, twice the epochs
    'level_mic_cmn_balanced': ('c40m80_level_cmn', 'mic', {**BASE, 'balance': True, 'class_weights': False}),  # each (corpus, gender) drawn as often
    'level_mic_cmn_mixup': ('c40m80_level_cmn', 'mic', {**BASE, 'mixup': True}),  # fastai's MixUp: softer targets, calibration
    'level_mic_cmn_n48': ('c40m80_level_cmn', 'mic', {**BASE, 'n_train': 48}),  # up to 48 clips a training speaker, not 16
    'level_mic_cmn_c80': ('c80m80_level_cmn', 'mic', {**BASE, 'size': (80, 64)}),  # all 80 coefficients: the mel spectrum's fine detail
    'level_mic_cmn_c80_seed1': ('c80m80_level_cmn', 'mic', {**BASE, 'size': (80, 64), 'seed': 1}),  # its training noise
    'level_mic_cmn_c80_seed2': ('c80m80_level_cmn', 'mic', {**BASE, 'size': (80, 64), 'seed': 2}),
    'level_mic_cmn_pitch': ('c40m80_level_cmn', 'mic_pitch', BASE),   # the copies' voices also moved +-4 semitones, formants kept
    'level_mic_cmn_pitch_seed1': ('c40m80_level_cmn', 'mic_pitch', {**BASE, 'seed': 1}),
    'level_mic_cmn_pitch_seed2': ('c40m80_level_cmn', 'mic_pitch', {**BASE, 'seed': 2}),
    'level_mic_cmn_c80_pitch': ('c80m80_level_cmn', 'mic_pitch', {**BASE, 'size': (80, 64)}),   # both: 80 coefficients, pitch moves
    'level_mic_cmn_c80_pitch_seed1': ('c80m80_level_cmn', 'mic_pitch', {**BASE, 'size': (80, 64), 'seed': 1}),
    'level_mic_cmn_c80_pitch_seed2': ('c80m80_level_cmn', 'mic_pitch', {**BASE, 'size': (80, 64), 'seed': 2}),
    'level_mic_cmn_pitch_e20': ('c40m80_level_cmn', 'mic_pitch', {**BASE, 'epochs': 20}),   # pitch moves and twice the epochs
    'level_mic_cmn_pitch_e20_seed1': ('c40m80_level_cmn', 'mic_pitch', {**BASE, 'epochs': 20, 'seed': 1}),
    'level_mic_cmn_pitch_e20_seed2': ('c40m80_level_cmn', 'mic_pitch', {**BASE, 'epochs': 20, 'seed': 2}),
    'level_mic_cmn_r18': ('c40m80_level_cmn', 'mic', {**BASE, 'arch': 'resnet18'}),   # the shipped recipe on a ResNet-18: half the weights (#20's latency)
    'level_mic_cmn_r18_seed1': ('c40m80_level_cmn', 'mic', {**BASE, 'arch': 'resnet18', 'seed': 1}),
    'level_mic_cmn_r18_seed2': ('c40m80_level_cmn', 'mic', {**BASE, 'arch': 'resnet18', 'seed': 2}),
    'level_mic_cmn_r18_pitch': ('c40m80_level_cmn', 'mic_pitch', {**BASE, 'arch': 'resnet18'}),   # the ResNet-18 with pitch moves (the ResNet-34's best on BAVED)
    'level_mic_cmn_r18_pitch_seed1': ('c40m80_level_cmn', 'mic_pitch', {**BASE, 'arch': 'resnet18', 'seed': 1}),
    'level_mic_cmn_r18_pitch_seed2': ('c40m80_level_cmn', 'mic_pitch', {**BASE, 'arch': 'resnet18', 'seed': 2}),
    'level_mic_cmn_audited': ('c40m80_level_cmn', 'mic', {**BASE, 'audited': True}),  # the shipped recipe without the suspects
    'level_mic_cmn_r18_win': ('c40m80_level_cmn', 'mic', {**BASE, 'arch': 'resnet18', 'windows': True}),   # trained on every 1 s window of its clips, as `predict` cuts them
    'level_mic_cmn_r18_win_seed1': ('c40m80_level_cmn', 'mic', {**BASE, 'arch': 'resnet18', 'windows': True, 'seed': 1}),
    'level_mic_cmn_r18_win_seed2': ('c40m80_level_cmn', 'mic', {**BASE, 'arch': 'resnet18', 'windows': True, 'seed': 2}),
    'level_mic_cmn_audited_seed1': ('c40m80_level_cmn', 'mic', {**BASE, 'audited': True, 'seed': 1}),
    'level_mic_cmn_audited_seed2': ('c40m80_level_cmn', 'mic', {**BASE, 'audited': True, 'seed': 2}),
}

def vg(*args): subprocess.run([sys.executable, '-c', 'import sys; from voicegender.cli import main; sys.exit(main(sys.argv[1:]))',
                              *args], check=True)

def clips_table():
    from voicegender.data import corpus_table
    return corpus_table(CORPORA)[0]

def prepare(recipes):
    from voicegender.data import loco_splits, save_splits
    data = [a for c in CORPORA for a in ('--data', c)]
    kinds = {r: {k for rr,k,_ in LEVERS.values() if rr == r} for r in recipes}
    for r in recipes:
        vg('prepare', *data, *RECIPES[r], '--out', str(WORK/r), '--maps', str(WORK/f'maps_{r}'), '--results', str(WORK))
        for k in sorted(kinds[r]):
            vg('prepare', *data, *RECIPES[r], '--distort', k, '--out', str(WORK/f'{r}_{k}'), '--maps',
               str(WORK/f'maps_{r}_{k}'), '--results', str(WORK))
    if not SPLITS.exists(): save_splits(loco_splits(clips_table()), SPLITS)
    from voicegender.data import per_speaker   # the clips every method and the peer are scored on (bench/peer.py reads it)
    clips = ROOT/'results/crosscorpus_clips.csv'
    if not clips.exists(): per_speaker(clips_table(), 8).to_csv(clips, index=False)

def lever_setup(lever):
    "LEVER's image recipe, its training settings (augmented copies included) and the clips a training speaker."
    from voicegender.train import TrainConfig
    recipe, kind, kw = LEVERS[lever]
    kw = dict(kw); n_train = kw.pop('n_train', 16)   # a choice of the fold's clips, not of training
    if kw.pop('audited', False):   # a fold's test speakers are never in training, so leaving out every suspect is the same
        kw['exclude_speakers'] = tuple(suspects())
    root = windows_root(recipe) if kw.pop('windows', False) else WORK/recipe
    return recipe, TrainConfig(**kw, distorted=f'{root}_{kind}'), n_train

def windows_root(recipe)->Path: # .tmp/cc/RECIPE_win (every 1 s window of the training clips; RECIPE_win_KIND: their KIND copies)
    return WORK/f'{recipe}_win'

def windows(recipe='c40m80_level_cmn', kind='mic', n_train=16):
    """Images of every 1 s window of each clip a training speaker can give (`fold_images`' choice, `n_train` a
    speaker), cut as `predict` cuts them (the shipped model's speech rules and recipe, which must be RECIPE's), and of
    the same windows of the clip's KIND copy (the same distortion and seed as `prepare --distort`). Writes
    .tmp/cc/RECIPE_win[_KIND]/<gender>/<image name>__w<i>.jpg and RECIPE_win/windows.csv; resumable in chunks of clips.
    A clip that fails is reported and left out; the others go on."""
    import zlib
    from voicegender.core import load_audio, atomic_write, AudioError, SR
    from voicegender.crosscorpus import clip_images
    from voicegender.data import per_speaker
    from voicegender.deploy import Predictor
    from voicegender.mfcc import distort_audio, save_jpeg
    root = windows_root(recipe); copies = Path(f'{root}_{kind}')
    pred = Predictor(threads=1); want = json.loads((WORK/recipe/'recipe.json').read_text())
    if {**want, 'trim': False} != {**pred.recipe, 'seconds': want['seconds'], 'trim': False}:
        raise SystemExit(f"the shipped model's recipe {pred.recipe} is not {recipe}'s {want}")
    for r, extra in ((root, {}), (copies, {'distort': kind})):
        atomic_write(r/'recipe.json', json.dumps({**want, **extra}, indent=1))
    clips = per_speaker(clip_images(clips_table(), WORK/recipe), n_train)
    table = root/'windows.csv'
    done = pd.read_csv(table) if table.exists() else pd.DataFrame(columns=[*clips.columns, 'window'])
    todo = clips[~clips.wav.isin(done.wav)]; t = time.time()
    print(f"{len(clips)} clips, {len(todo)} to do", flush=True)
    for k in range(0, len(todo), 200):
        rows = []
        for c in todo.iloc[k:k+200].itertuples(index=False):
            try:
                y = load_audio(c.wav)
                _, yc, wins = pred.clip_windows(y)
                if not wins: continue
                _, yd = pred.prepared(distort_audio(y, SR, kind, seed=zlib.crc32(Path(c.wav).stem.encode())))
                name = Path(c.path).stem
                for i,(im, imd) in enumerate(zip(pred.images(yc, wins)[0], pred.images(yd, [(s, min(e, len(yd))) for s,e in wins])[0])):
                    save_jpeg(im, root/c.gender/f'{name}__w{i}.jpg'); save_jpeg(imd, copies/c.gender/f'{name}__w{i}.jpg')
                    rows.append({**c._asdict(), 'path': str(root/c.gender/f'{name}__w{i}.jpg'), 'window': i})
            except Exception as e:   # reported, and the other clips go on (an AudioError already names the file)
                print(f"left out: {e if isinstance(e, AudioError) else f'{c.wav}: {type(e).__name__}: {e}'}", flush=True)
        done = pd.concat([done, pd.DataFrame(rows, columns=done.columns)], ignore_index=True)
        atomic_write(table, done.to_csv(index=False))   # the chunk's images are written: now it counts as done
        print(f"{min(k+200, len(todo))}/{len(todo)} clips, {len(done)} windows, {time.time() - t:.0f} s", flush=True)

def lever_windows(lever)->pd.DataFrame|None:
    "The window images a `_win` lever trains on (`windows` makes them), else None."
    if not LEVERS[lever][2].get('windows'): return None
    table = windows_root(LEVERS[lever][0])/'windows.csv'
    if not table.exists(): raise SystemExit(f"{lever} trains on every 1 s window: run `python bench/crosscorpus.py windows` first")
    return pd.read_csv(table)

def train(lever, folds):
    from voicegender.crosscorpus import clip_images, loco_fold
    recipe, cfg, n_train = lever_setup(lever)
    images = clip_images(clips_table(), WORK/recipe)
    win = lever_windows(lever)
    for f in folds:
        t = time.time()
        r = loco_fold(OUT/lever/f'fold{f}', images, SPLITS, f, cfg, n_train=n_train, windows=win)
        a = r['scores'][r['heldout'][0]]['adults']
        print(f"{lever} fold {f} (held out {r['heldout'][0]}): balanced {a['balanced_accuracy']:.1%}, "
              f"speakers {a['speaker_accuracy']:.0%}, coverage {a['coverage']:.0%} at {a['answered_accuracy']:.1%}, "
              f"ECE {a['ece']:.1%} ({time.time() - t:.0f} s)", flush=True)

SEEDED = ('level_mic_cmn', 'level_mic_cmn_pitch', 'level_mic_cmn_c80_pitch', 'level_mic_cmn_pitch_e20', 'level_mic_cmn_r18', 'level_mic_cmn_r18_pitch',
          'level_mic_cmn_r18_win')   # recipes trained with seeds 42, 1 and 2: ensemble and fusion rows
PREDICT_SUFFIX = '_predict'   # results/crosscorpus/<lever>_predict: the lever's fold models through `Predictor`

def predict(lever, folds):
    """Score LEVER's fold models on the same test clips the way `voicegender predict` does: Silero finds the speech,
    every 1 s window of it (hop 0.5 s) is an image, the clip's answer is the mean of its windows' calibrated
    probabilities (training and the table's other rows use one image a clip, its loudest second). Each fold's own
    calibration; a clip without speech counts as a wrong answer. Resumable per fold."""
    from voicegender.deploy import Predictor
    from voicegender.crosscorpus import corpus_scores
    for f in folds:
        src, dest = OUT/lever/f'fold{f}', OUT/f'{lever}{PREDICT_SUFFIX}'/f'fold{f}'
        if (dest/'scores.json').exists(): print(f"fold {f}: done before ({dest.relative_to(ROOT)})"); continue
        sc = json.loads((src/'scores.json').read_text()); cal = sc['calibration']
        test = pd.read_csv(src/'test_predictions.csv'); t = time.time()
        pred = Predictor(src/'model.safetensors', temperature=cal['temperature'], threshold=cal['threshold'], threads=1)
        res = [pred.predict_file(w) for w in test.wav]
        p = np.array([r['probabilities']['female'] if r.get('probabilities') else np.nan for r in res])
        test = test.assign(p_female=np.where(np.isnan(p), test.gender != 'female', p),   # no speech: the wrong answer
                           n_windows=[r.get('n_windows', 0) for r in res])
        out = dict(fold=f, calibration=cal, no_speech=int(np.isnan(p).sum()),
                   scores=corpus_scores(test, cal['threshold']), source=str(src.relative_to(ROOT)), seconds=round(time.time() - t))
        dest.mkdir(parents=True, exist_ok=True)
        test.to_csv(dest/'test_predictions.csv', index=False)
        (dest/'scores.json').write_text(json.dumps(out, indent=1, default=float))   # last: its presence marks the fold done
        a = out['scores'][sc['heldout'][0] if 'heldout' in sc else test.corpus.iloc[0]]['adults']
        print(f"{lever} fold {f} through predict: balanced {a['balanced_accuracy']:.1%} (one window: "
              f"{list(sc['scores'].values())[0]['adults']['balanced_accuracy']:.1%}), {out['no_speech']} clips without speech, "
              f"{out['seconds']} s", flush=True)

YIN_GBM = 'YIN statistics + GBM'   # acoustic statistics + GBM without pyin's (`baselines.YIN_COLUMNS`): a cheap third source for the fusion
# the fusion heads as `predict --fusion` runs them: fitted on what `Predictor.head_input` gives them (level steadied, the
# speech span), not on the whole clip as read from disk
HEAD_BASELINES = {'resemblyzer': 'Resemblyzer + LR (predict input)', 'yin': 'YIN statistics + GBM (predict input)'}
HEADS_CACHE = {'resemblyzer': WORK/'heads_predict_input_resemblyzer.npz', 'yin': WORK/'heads_predict_input_yin.csv'}

def head_features()->dict: # {'resemblyzer': features, 'yin': features}, indexed by wav
    """Both heads' features of every clip of the cross-corpus folds and of the shipped split, computed as `predict
    --fusion` does: on `Predictor.head_input` of the shipped model's recipe (a clip without speech: its whole prepared
    signal). Cached in .tmp/cc, resumable."""
    from voicegender.core import load_audio
    from voicegender.baselines import cached_features, resemblyzer_encoder, resemblyzer_embedding, yin_features, YIN_COLUMNS
    from voicegender.crosscorpus import clip_images, fold_images
    from voicegender.data import load_splits
    from voicegender.deploy import Predictor
    images = clip_images(clips_table(), WORK/'c40m80_level_cmn')
    wavs = sorted({w for sp in map(load_splits, (SPLITS, HOLDOUT)) for f in sorted(sp.fold.unique()) for w in fold_images(images, sp, f).wav})
    pred, enc = Predictor(threads=1), resemblyzer_encoder()
    def heard(w):
        y = load_audio(w); x = pred.head_input(y)
        return pred.prepared(y)[1] if x is None else x
    recipe = dict(level=bool(pred.recipe.get('level')), vad=pred.vad, min_speech=pred.min_speech)
    out = {'resemblyzer': cached_features(wavs, lambda w: resemblyzer_embedding(enc, heard(w)), HEADS_CACHE['resemblyzer'], recipe=recipe),
           'yin': cached_features(wavs, lambda w: yin_features(heard(w)), HEADS_CACHE['yin'], columns=YIN_COLUMNS, recipe=recipe)}
    for k,(X, err) in out.items():
        if err: print(f"{k}: {len(err)} clips failed, e.g. {next(iter(err.items()))}")
    return {k: X for k,(X, err) in out.items()}

def baselines():
    from voicegender.core import load_audio
    from voicegender.baselines import (cached_features, acoustic_features, resemblyzer_encoder, resemblyzer_embedding,
                                       lr_model, gbm_model, YIN_COLUMNS)
    from voicegender.crosscorpus import clip_images, baseline_fold, fold_images
    from voicegender.data import load_splits
    sp = load_splits(SPLITS); images = clip_images(clips_table(), WORK/'c40m80_level')
    wavs = sorted(set(pd.concat([fold_images(images, sp, f) for f in sorted(sp.fold.unique())]).wav))
    enc = resemblyzer_encoder()
    feats = {'acoustic': cached_features(wavs, lambda p: acoustic_features(load_audio(p)), WORK/'acoustic.csv')[0],
             'resemblyzer': cached_features(wavs, lambda p: resemblyzer_embedding(enc, load_audio(p)), WORK/'resemblyzer.npz')[0]}
    feats['yin'] = feats['acoustic'][YIN_COLUMNS]   # the same statistics without pyin's (89 ms a clip): YIN's median F0 only
    feats.update({f'{k} (predict input)': v for k,v in head_features().items()})
    res = {}
    for name,(feat,model) in {'acoustic statistics + LR': ('acoustic', lr_model), 'acoustic statistics + GBM': ('acoustic', gbm_model),
                              'Resemblyzer + LR': ('resemblyzer', lr_model), YIN_GBM: ('yin', gbm_model),
                              HEAD_BASELINES['resemblyzer']: ('resemblyzer (predict input)', lr_model),
                              HEAD_BASELINES['yin']: ('yin (predict input)', gbm_model)}.items():
        folds = [baseline_fold(feats[feat], images, sp, f, model) for f in sorted(sp.fold.unique())]
        res[name] = [{k: v for k,v in r.items() if k not in ('predictions', 'model')} for r in folds]
        pd.concat([r['predictions'] for r in folds]).to_csv(baseline_csv(name), index=False)
        print(name, {r['fold']: round(list(r['scores'].values())[0]['adults']['balanced_accuracy'], 3) for r in folds}, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT/'baselines.json').write_text(json.dumps(res, indent=1, default=lambda o: o.item() if hasattr(o, 'item') else str(o)))

def peer_folds(csv=ROOT/'results/peer_inaseg.csv', suspects:list|None=None):
    "inaSpeechSegmenter's answers on the same test clips, scored like the others (its answer: more female or male seconds)."
    from voicegender.crosscorpus import clip_images, fold_images, corpus_scores, AUDITED
    from voicegender.data import load_splits, ADULT_AGE
    if not Path(csv).exists(): return None
    peer = pd.read_csv(csv); peer.index = [str(Path(p).resolve()) for p in peer.path]
    sp = load_splits(SPLITS); images = clip_images(clips_table(), WORK/'c40m80_level'); folds = []
    for f in sorted(sp.fold.unique()):
        it = fold_images(images, sp, f).merge(sp[sp.fold == f][['speaker', 'role']], on='speaker').query("role == 'test'")
        it = it.assign(wav=[str(Path(w).resolve()) for w in it.wav]); got = it.wav.isin(peer.index)
        lab = peer.reindex(it.wav).label.fillna('error').values
        # a hard answer (p_female 1 or 0); "no speech" or an error is unanswered, and wrong in balanced accuracy
        answered = np.isin(lab, ['female', 'male'])
        p = np.where(answered, lab == 'female', it.gender != 'female').astype(float)
        t = it.assign(p_female=p, answered=answered, right=answered & ((p >= .5) == (it.gender == 'female')))
        sc, child = corpus_scores(t, 0.5, suspects), t.age < ADULT_AGE
        for c,groups in sc.items():
            for g,s in groups.items():
                d = t[(t.corpus == c) & (child if g == 'children' else ~child) & ~(t.speaker.isin(suspects or []) if g == AUDITED else False)]
                if s.get('n_clips'): s.update(coverage=float(d.answered.mean()), ece=None,
                                              answered_accuracy=float(d.right[d.answered].mean()) if d.answered.any() else None)
        folds.append(dict(fold=int(f), scores=sc, missing=int((~got).sum())))
    return folds

def baseline_csv(name:str)->Path: # 'acoustic statistics + GBM' -> baseline_acoustic_gbm_model.csv
    import re
    return OUT/f"baseline_{name.split()[0].lower()}_{re.sub(r'[^a-z0-9]+', '_', name.split('+')[-1].lower()).strip('_')}_model.csv"

def mean_folds(levers:list, baselines:tuple=(), suspects:list|None=None):
    """Ensembles and late fusion: per fold, the mean of the calibrated p(female) of the ResNets of `levers` on the same
    clips, judged against the mean of their thresholds; with baselines (names in `baselines.json`), that mean and each
    baseline's are averaged the same way (the ResNets together weigh as much as one baseline); the heads fitted on
    `predict`'s input (HEAD_BASELINES) are pooled as `predict --fusion` pools them (`pool_log_odds`). One lever or one
    baseline alone: its own scores. With `suspects`, also scored without them. None when a part is missing."""
    from voicegender.crosscorpus import corpus_scores
    from voicegender.deploy import pool_log_odds
    parts = []   # per source: {fold: (predictions, threshold)}
    for lever in levers:
        runs = {}
        for d in sorted((OUT/lever).glob('fold*')):
            if (d/'scores.json').exists():
                sc = json.loads((d/'scores.json').read_text())
                runs[sc['fold']] = (pd.read_csv(d/'test_predictions.csv'), sc['calibration']['threshold'])
        parts.append(runs)
    for name in baselines:
        if not baseline_csv(name).exists() or not (OUT/'baselines.json').exists(): return None
        b = pd.read_csv(baseline_csv(name))
        cal = {r['fold']: r['calibration']['threshold'] for r in json.loads((OUT/'baselines.json').read_text())[name]}
        test = pd.read_csv(SPLITS).query("role == 'test'")   # one row a clip: each clip is tested in one fold
        parts.append({f: (b[b.speaker.isin(test.speaker[test.fold == f])], t) for f,t in cal.items()})
    folds = sorted(set.intersection(*(set(r) for r in parts))) if parts and all(parts) else []
    out = []
    for f in folds:
        base = parts[0][f][0]
        ps = [base.p_female.to_numpy()] + [base[['wav']].merge(r[f][0][['wav', 'p_female']], on='wav', how='left').p_female.to_numpy()
                                           for r in parts[1:]]
        if any(np.isnan(p).any() for p in ps): raise SystemExit(f"fold {f}: the sources did not score the same clips")
        thr = [r[f][1] for r in parts]; n = len(levers)
        lead = [np.mean(ps[:n], 0)] if n else []; lead_t = [np.mean(thr[:n])] if n else []
        as_predict = baselines and set(baselines) <= set(HEAD_BASELINES.values())   # the heads as `predict --fusion` runs them,
        p = (pool_log_odds if as_predict else lambda q: np.mean(q, 0))([*lead, *ps[n:]])   # pooled as it pools them
        t = np.mean([*lead_t, *thr[n:]])
        out.append(dict(fold=f, scores=corpus_scores(base.assign(p_female=p), t, suspects)))
    return out or None

def suspects()->list:
    "The speakers `audit` flagged (none before it has run)."
    if not AUDIT.exists(): raise SystemExit(f"{AUDIT.relative_to(ROOT)} is missing: run `python bench/crosscorpus.py audit` first")
    a = pd.read_csv(AUDIT); return sorted(a.speaker[a.flagged])

def audit_ceiling(flagged:list)->dict:
    "Per corpus, the balanced accuracy on the adults' clips of a method that calls every suspect the other gender and is right on everyone else."
    from voicegender.data import ADULT_AGE
    c = pd.read_csv(ROOT/'results/crosscorpus_clips.csv'); c = c[~(c.age < ADULT_AGE)]
    return {k: float(np.mean([1 - d.speaker[d.gender == g].isin(flagged).mean() for g in ('female', 'male')]))
            for k,d in c.groupby('corpus')}

def median_f0(wavs:list)->pd.Series:
    "Each clip's median F0 (pyin, Hz; NaN where nothing is voiced), from the acoustic-features cache the baselines share."
    from voicegender.core import load_audio
    from voicegender.baselines import cached_features, acoustic_features
    return cached_features(wavs, lambda p: acoustic_features(load_audio(p)), WORK/'acoustic.csv')[0].f0_median

def audit():
    """Label audit of the adult speakers of every corpus by two judges independent of our models: the pitch rule (a
    clip's median F0, pyin, at or above 165 Hz is female) and inaSpeechSegmenter (results/peer_inaseg.csv), on the same
    8 clips a speaker. Flagged: both call the speaker the other gender on at least 80 % of the clips they answer
    (`consensus_suspects`). Writes results/label_audit_corpora.csv; labels are not changed."""
    from voicegender.baselines import pitch_labels, consensus_suspects
    from voicegender.data import ADULT_AGE
    clips = pd.read_csv(ROOT/'results/crosscorpus_clips.csv'); clips = clips[~(clips.age < ADULT_AGE)]
    peer = pd.read_csv(ROOT/'results/peer_inaseg.csv')[['path', 'label']].rename(columns=dict(label='inaSpeechSegmenter'))
    wavs = [str((ROOT/p).resolve()) for p in clips.path]
    f0 = median_f0(wavs)
    clips = clips.merge(peer, on='path', how='left').assign(pitch=pitch_labels(f0.reindex(wavs).to_numpy()))
    a = consensus_suspects(clips, ['pitch', 'inaSpeechSegmenter'])
    a = a.merge(clips.groupby('speaker')[['corpus', 'age']].first().reset_index(), on='speaker')
    a = a.merge(pd.Series(f0.reindex(wavs).to_numpy(), index=clips.speaker.to_numpy()).groupby(level=0).median()
                .rename('median_f0_hz').reset_index().rename(columns=dict(index='speaker')), on='speaker')
    a = a.sort_values(['flagged', 'corpus', 'speaker'], ascending=[False, True, True])
    a.to_csv(AUDIT, index=False)
    print(f"{len(a)} adult speakers, {a.flagged.sum()} flagged -> {AUDIT.relative_to(ROOT)}")
    print(a[a.flagged].to_string(index=False))
    print("the most a method that hears the suspects' voices can score as labelled (balanced, adults): " +
          ', '.join(f"{c} {v:.1%}" for c,v in audit_ceiling(suspects()).items()))

PITCH_BANDS = (0, 120, 165, 210, 1000)   # Hz: the speaker's median F0 (pyin) over the scored clips
AGE_BANDS = (0, 13, 16, 20, 30, 100)     # years: children, teens, then adults

def groups():
    """Where the shipped recipe fails on a corpus it never heard: per held-out corpus and labelled gender, the clip
    recall (p_female >= 0.5 for women, < 0.5 for men) of the mean of the three seeds' calibrated p(female), by the
    speaker's median pitch band, age band and, for BAVED, emotion level (0 low, 1 neutral, 2 high, from its file
    names). Each group with its clips and speakers. Writes results/crosscorpus_groups.json."""
    from voicegender.report import SEED_LEVERS
    from voicegender.data import ADULT_AGE
    runs = [pd.concat([pd.read_csv(d/'test_predictions.csv') for d in sorted((OUT/l).glob('fold*'))]) for l in SEED_LEVERS]
    d = runs[0].assign(p_female=np.mean([r.p_female.to_numpy() for r in runs], 0))
    if not all((r.wav.to_numpy() == d.wav.to_numpy()).all() for r in runs): raise SystemExit("the seeds did not score the same clips")
    f0 = median_f0(list(d.wav))
    d = d.assign(right=(d.p_female >= 0.5) == (d.gender == 'female'), f0=f0.reindex(d.wav).to_numpy())
    d['pitch_band'] = pd.cut(d.groupby('speaker').f0.transform('median'), PITCH_BANDS, right=False).astype(str)
    d['age_band'] = pd.cut(d.age, AGE_BANDS, right=False).astype(str).where(d.age.notna(), 'unknown')
    d['emotion'] = [Path(w).stem.split('-')[4] if c == 'baved' else '-' for w,c in zip(d.wav, d.corpus)]
    adults = d[~(d.age < ADULT_AGE)]
    def table(x, by):
        g = x.groupby(['corpus', 'gender', by])
        return [dict(corpus=c, gender=gd, group=str(v), recall=float(t.right.mean()), clips=len(t), speakers=t.speaker.nunique())
                for (c,gd,v),t in g]
    out = dict(method=f"mean of {', '.join(SEED_LEVERS)} (one image a clip, leave-one-corpus-out)",
               pitch_band_adults=table(adults[adults.pitch_band != 'nan'], 'pitch_band'), age_band=table(d, 'age_band'),
               emotion_adults=table(adults[adults.corpus == 'baved'], 'emotion'))
    (ROOT/'results/crosscorpus_groups.json').write_text(json.dumps(out, indent=1))
    for k,v in out.items():
        if k == 'method': continue
        print(f"\n{k}:\n" + pd.DataFrame(v).to_string(index=False, float_format=lambda x: f"{x:.1%}"))

def net_name(lever:str)->str:
    "The network of LEVER's rows: 'ResNet-34', or the other torchvision ResNet its settings name."
    from voicegender.report import net_label
    return net_label(LEVERS[lever][2].get('arch', 'resnet34'))

def yin_fusion_name(recipe:str)->str:
    "The row of RECIPE's seeds fused with Resemblyzer and the YIN statistics (no pyin)."
    return f'{net_name(recipe)} {recipe} seeds 42 + 1 + 2 + Resemblyzer + LR + YIN GBM (late fusion)'

def methods()->list:
    "Every row of the table but the peer's: (name, ResNet levers, baselines), whose predictions `mean_folds` combines."
    from voicegender.report import fusion_name, seed_levers, ensemble_rows, SEED_LEVERS, SHIPPED_LEVER
    out = [(f'{net_name(l)}, {l}', [l], ()) for l in LEVERS if any((OUT/l).glob('fold*/scores.json'))]
    out += [(f"{net_name(l)}, {l}, through predict (every 1 s window)", [l + PREDICT_SUFFIX], ()) for l in LEVERS
            if any((OUT/(l + PREDICT_SUFFIX)).glob('fold*/scores.json'))]
    if (OUT/'baselines.json').exists(): out += [(b, [], (b,)) for b in json.loads((OUT/'baselines.json').read_text())]
    fused = dict.fromkeys(('level_mic', *seed_levers('level_mic_cmn'), *seed_levers('level_mic_cmn_r18'), *SEED_LEVERS))   # each seed's fusion: the shipped recipes, now and before
    out += [(fusion_name(l, net_name(l)), [l], ('Resemblyzer + LR',)) for l in fused]
    for recipe in SEEDED:
        if all((OUT/l).is_dir() for l in seed_levers(recipe)):
            out += [(name, list(seed_levers(recipe)), b) for name,b in zip(ensemble_rows(recipe, net_name(recipe)), [(), ('Resemblyzer + LR',),
                                                                           ('Resemblyzer + LR', 'acoustic statistics + GBM')])]
            if recipe == SHIPPED_LEVER: out += [(yin_fusion_name(recipe), list(seed_levers(recipe)), ('Resemblyzer + LR', YIN_GBM))]
    for recipe in SEEDED:   # the seeds' fold models through `predict`'s path, where they were run (`predict`)
        through = [l + PREDICT_SUFFIX for l in seed_levers(recipe)]
        if all((OUT/l).is_dir() for l in through):
            out += [(f'{name}, through predict', through, b) for name,b in zip(ensemble_rows(recipe, net_name(recipe))[:2],
                                                                                [(), ('Resemblyzer + LR',)])]
            if recipe == SHIPPED_LEVER:
                out += [(f'{yin_fusion_name(recipe)}, through predict', through, ('Resemblyzer + LR', YIN_GBM)),
                        (f"{ensemble_rows(recipe, net_name(recipe))[1]}, as predict --fusion", through, (HEAD_BASELINES['resemblyzer'],)),
                        (f'{yin_fusion_name(recipe)}, as predict --fusion resemblyzer,yin', through, tuple(HEAD_BASELINES.values()))]
    return out

def summary_table(rows:list)->str:
    """Adults' balanced accuracy, one row a recipe (the mean of its seeds and their range) or other method, and the mean
    over the held-out corpora: the README's short form of the full table."""
    df = pd.DataFrame([r for r in rows if r['group'] == 'adults' and 'through predict' not in r['method']
                       and 'seeds 42 + 1 + 2' not in r['method']])   # ensembles: in the full tables
    df['row'] = df.method.str.replace(r'_seed\d+\b', '', regex=True)   # a recipe's seeds: one row
    corp = sorted(df.heldout.unique()); pct = lambda v: f"{100*v:.1f}"
    lines = ['| method (balanced accuracy, %) | seeds | ' + ' | '.join(corp) + ' | mean |', '|---|---|' + '---|'*(len(corp) + 1)]
    for name,g in df.groupby('row', sort=False):
        n = g.method.nunique(); by = g.groupby('heldout').balanced_accuracy
        cell = lambda c: '-' if c not in by.groups else pct(by.get_group(c).mean()) + (
            f" ({pct(by.get_group(c).min())}-{pct(by.get_group(c).max())})" if n > 1 else '')
        seeds = str(n) if name.startswith('ResNet') else '-'
        lines.append(f"| {name} | {seeds} | " + ' | '.join(cell(c) for c in corp) + f" | **{pct(by.mean().reindex(corp).mean())}** |")
    return '\n'.join(lines)

KEY_NOTE = "Cells: balanced accuracy (speakers right by majority; coverage / accuracy on the answered clips; ECE)."

def key_methods()->tuple:
    "The rows the README shows in full: the shipped recipe's seeds, their ensemble and fusions, and the peer."
    from voicegender.report import SEED_LEVERS, ENSEMBLE_ROWS, SHIPPED_LEVER
    as_predict = (f"{ENSEMBLE_ROWS[1]}, as predict --fusion", f'{yin_fusion_name(SHIPPED_LEVER)}, as predict --fusion resemblyzer,yin')
    return (*(f'{net_name(l)}, {l}' for l in SEED_LEVERS), *ENSEMBLE_ROWS, *as_predict, 'inaSpeechSegmenter 0.6.8 (peer)')

def table():
    from voicegender.crosscorpus import scores_rows, markdown_table, AUDITED
    rows, meta, audit = [], {}, suspects() if AUDIT.exists() else None
    for name,levers,bases in methods():
        if folds := mean_folds(levers, bases, audit): rows += scores_rows(name, folds)
        if len(levers) == 1 and not bases and levers[0] in LEVERS: meta[levers[0]] = dict(folds=len(folds or []), options=str(LEVERS[levers[0]]))
    if peer := peer_folds(suspects=audit):
        rows += scores_rows('inaSpeechSegmenter 0.6.8 (peer)', peer); meta['peer_missing_clips'] = sum(f['missing'] for f in peer)
    if audit is not None: meta['label_audit_suspects'], meta['label_audit_ceiling'] = audit, audit_ceiling(audit)
    (ROOT/'results/crosscorpus.json').write_text(json.dumps(dict(rows=rows, levers=meta), indent=1, default=str))
    md = ["Balanced clip accuracy on the held-out corpus. Generated by `python bench/crosscorpus.py table`.", '',
          '### Adults, in short', '', "A recipe trained with several seeds: the mean of its seeds (their range); "
          "'mean' averages the held-out corpora. Ensembles of seeds: in the tables below.", '', summary_table(rows), '',
          "### The shipped recipe's seeds, their ensemble and fusions, and the peer, in full", '', KEY_NOTE, '',
          markdown_table([r for r in rows if r['method'] in key_methods()], 'adults'), '',
          '### Adults', '', KEY_NOTE, '', markdown_table(rows, 'adults'),
          '', '### Children (under 16)', '', markdown_table(rows, 'children')]
    if audit is not None:
        md += ['', f"### {AUDITED[0].upper() + AUDITED[1:]}", '', f"The same adults without the {len(audit)} speakers that "
               "`python bench/crosscorpus.py audit` flags (results/label_audit_corpora.csv: the pitch rule and "
               "inaSpeechSegmenter both call them the other gender; labels unchanged): {}. This view leaves out clips the "
               "peer gets wrong by construction; it says how much of the gap the labels may explain, not how good a "
               "method is.".format(', '.join(audit)), '', markdown_table(rows, AUDITED)]
    (ROOT/'docs').mkdir(exist_ok=True); (ROOT/'docs/crosscorpus.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))

def ship(lever):
    "Train LEVER's recipe on every corpus but the held-out speakers, calibrate on the validation speakers, put it in the package."
    from voicegender.crosscorpus import clip_images, loco_fold
    from voicegender.data import holdout_splits, save_splits, load_splits
    from voicegender.model import load_model, save_model, SHIPPED_MODEL
    clips = clips_table()
    if not HOLDOUT.exists(): save_splits(holdout_splits(clips), HOLDOUT)
    sp = load_splits(HOLDOUT); sp[sp.role == 'test'].to_csv(ROOT/'results/heldout_speakers.csv', index=False)
    recipe, cfg, n_train = lever_setup(lever)
    run = OUT/f'shipped_{lever}'
    r = loco_fold(run, clip_images(clips, WORK/recipe), HOLDOUT, 0, cfg, n_train=n_train, windows=lever_windows(lever))
    m = load_model(run/'model.safetensors')
    spk = sp[sp.role != 'test'].groupby(['corpus', 'role', 'gender']).speaker.nunique()
    settings = {**m.settings, 'calibration': {k: r['calibration'][k] for k in ('temperature', 'threshold')},
                'training': {**m.settings['training'], 'lever': lever, 'corpora': sorted(clips.corpus.unique()),
                             'speakers': {' '.join(k): int(v) for k,v in spk.items()}, 'pretrained': False,
                             'note': 'trained from scratch on CPU (no ImageNet weights)'},
                'heldout_speakers_scores': r['scores']}
    settings.pop('format', None); settings.pop('weights_sha256', None); settings.pop('weights_dtype', None)
    save_model(m.net, SHIPPED_MODEL, settings, half=True)
    print(f"shipped {SHIPPED_MODEL} ({SHIPPED_MODEL.stat().st_size/2**20:.1f} MiB)")
    for c,g in r['scores'].items():
        for grp,s in g.items():
            if s.get('n_clips'): print(f"  {c} {grp}: balanced {s['balanced_accuracy']:.1%}, speakers {s['speaker_accuracy']:.0%}, "
                                       f"coverage {s['coverage']:.0%} at {s['answered_accuracy']:.1%}, ECE {s['ece']:.1%}")

def ship_fusion():
    """Fit the fusion heads of `predict --fusion` (Resemblyzer + LR; the YIN statistics' GBM) on the shipped model's
    training speakers, on what `predict` gives them (`head_features`), calibrate each on the validation speakers (the
    rule of the cross-corpus fusion rows), write them beside the shipped model as JSON (no pickle), and score the
    held-out speakers through `Predictor` (the path `predict` takes): the model alone and with each set of heads."""
    from voicegender.core import SHIPPED_MODEL, read_model_file, atomic_write
    from voicegender.baselines import lr_model, gbm_model, gbm_to_dict, YIN_COLUMNS
    from voicegender.crosscorpus import clip_images, baseline_fold, corpus_scores
    from voicegender.data import load_splits
    from voicegender.deploy import Predictor, FUSION_HEADS, FUSION_FORMAT
    sp = load_splits(HOLDOUT); images = clip_images(clips_table(), WORK/'c40m80_level_cmn')
    feats, settings = head_features(), read_model_file(SHIPPED_MODEL)[0]
    for name,make in (('resemblyzer', lr_model), ('yin', gbm_model)):
        r = baseline_fold(feats[name], images, sp, 0, make)
        head = dict(format=FUSION_FORMAT, source=name, temperature=float(r['calibration']['temperature']),
                    threshold=float(r['calibration']['threshold']), model_sha256=settings['weights_sha256'],
                    input='Predictor.head_input: the clip as the network hears it (level steadied), first to last speech sample',
                    rule="p_female = the sigmoid of the mean of the model's and each head's calibrated log-odds (deploy.pool_log_odds); uncertain below the mean of their thresholds",
                    training=dict(split=str(HOLDOUT.relative_to(ROOT)), fold=0, clips=int((r['predictions'].role == 'test').sum()),
                                  calibration=r['calibration']))
        if name == 'resemblyzer':
            scaler, lr = r['model'][-2], r['model'][-1]
            head.update(embedding='resemblyzer VoiceEncoder, 256 values (voicegender.baselines.resemblyzer_embedding)',
                        mean=scaler.mean_.tolist(), scale=scaler.scale_.tolist(), coef=lr.coef_[0].tolist(), intercept=float(lr.intercept_[0]))
        else: head.update(features=YIN_COLUMNS, gbm=gbm_to_dict(r['model']))
        atomic_write(FUSION_HEADS[name], json.dumps(head, indent=1 if name == 'resemblyzer' else None))
        print(f"wrote {FUSION_HEADS[name]} ({FUSION_HEADS[name].stat().st_size/1024:.0f} KiB)")
    test = r['predictions'][['wav', 'speaker', 'gender', 'corpus', 'age']]
    report = dict(clips=len(test), note='the shipped model\'s held-out speakers (in-corpus), through Predictor.predict_file, one thread')
    for fusion in ('', 'resemblyzer', 'resemblyzer,yin'):
        pred = Predictor(fusion=fusion, threads=1)
        t = time.perf_counter()
        p = [pred.predict_file(w).get('probabilities') for w in test.wav]
        ms = 1000*(time.perf_counter() - t)/len(test)
        d = test.assign(p_female=[q['female'] if q else 0.5 for q in p])
        sc = corpus_scores(d, pred.threshold)
        key = {'': 'alone', 'resemblyzer': 'fused', 'resemblyzer,yin': 'fused with resemblyzer,yin'}[fusion]
        report[key] = dict(ms_per_clip=round(ms, 1), threshold=pred.threshold, scores=sc)
        print(f"{key} ({ms:.1f} ms a clip): " + '; '.join(
            f"{c} {s['adults']['balanced_accuracy']:.1%} (coverage {s['adults']['coverage']:.0%} at {s['adults']['answered_accuracy']:.1%})"
            for c,s in sc.items() if s.get('adults', {}).get('n_clips')))
    (ROOT/'results/fusion_heldout.json').write_text(json.dumps(report, indent=1, default=float))

def speaker_rows(r:pd.DataFrame)->dict: # {gender: [row indices of each speaker]}
    return {g: [np.flatnonzero(r.speaker.values == s) for s in r[r.gender == g].speaker.unique()] for g in ('female', 'male')}

def redraws(groups:dict, n:int, rng):
    "`n` sets of rows: each gender's speakers drawn with replacement, as many as it has (the same draws for every method)."
    for _ in range(n):
        yield np.concatenate([groups[g][k] for g in groups for k in rng.integers(0, len(groups[g]), len(groups[g]))])

def redrawn(r:pd.DataFrame, # one held-out corpus' adult clips: gender, speaker and the p(female) columns
            cols:list, n:int, rng)->tuple[dict,np.ndarray]: # ({col: balanced accuracy}, (n, len(cols)) on the redraws)
    "Balanced accuracy (answer at 0.5) of each column of R on all its speakers and on `n` speaker redraws, the same for every column."
    from sklearn.metrics import balanced_accuracy_score
    y = (r.gender == 'female').values
    ba = lambda col, idx: balanced_accuracy_score(y[idx], r[col].values[idx] >= 0.5)
    return {c: ba(c, np.arange(len(r))) for c in cols}, np.array([[ba(c, idx) for c in cols] for idx in redraws(speaker_rows(r), n, rng)])

def interval_95(x)->list: return [float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5))]

def compare(a:str, b:str, n=2000, seed=0):
    """Is recipe A's three-seed ensemble ahead of recipe B's on corpora they never heard? Per held-out corpus (adults),
    the balanced clip accuracy of each (mean of the seeds' calibrated p(female), answer at 0.5) and the 95 % interval
    of A's lead when the test speakers are redrawn (paired, within each gender), per corpus and for the mean over the
    corpora. A and B may name the seeds' runs through `predict` (RECIPE_predict). Writes results/crosscorpus_compare_A_vs_B.json."""
    from voicegender.data import ADULT_AGE
    from voicegender.report import seed_levers
    def seeds(k): return seed_levers(k) if not k.endswith(PREDICT_SUFFIX) else [l + PREDICT_SUFFIX for l in seed_levers(k[:-len(PREDICT_SUFFIX)])]
    rng, out, leads = np.random.default_rng(seed), {}, []
    for f in (0, 1, 2):
        p = {k: np.mean([pd.read_csv(OUT/l/f'fold{f}'/'test_predictions.csv').p_female.to_numpy() for l in seeds(k)], 0)
             for k in (a, b)}
        r = pd.read_csv(OUT/a/f'fold{f}'/'test_predictions.csv').assign(p_a=p[a], p_b=p[b])
        if not (pd.read_csv(OUT/b/f'fold{f}'/'test_predictions.csv').wav == r.wav).all(): raise SystemExit(f"fold {f}: not the same clips")
        r = r[~(r.age < ADULT_AGE)].reset_index(drop=True)
        full, draws = redrawn(r, ['p_a', 'p_b'], n, rng)
        lead = draws[:, 0] - draws[:, 1]; leads.append(lead)
        out[r.corpus.iloc[0]] = dict(a=full['p_a'], b=full['p_b'], lead=full['p_a'] - full['p_b'], lead_95=interval_95(lead))
        o = out[r.corpus.iloc[0]]
        print(f"{r.corpus.iloc[0]}: {a} {o['a']:.1%}, {b} {o['b']:.1%}, lead {o['lead']:+.1%} "
              f"(95 % {o['lead_95'][0]:+.1%} to {o['lead_95'][1]:+.1%})")
    pooled = np.mean(leads, 0)
    mean = dict(lead=float(np.mean([o['lead'] for o in out.values()])), lead_95=interval_95(pooled))
    print(f"mean over the corpora: lead {mean['lead']:+.1%} (95 % {mean['lead_95'][0]:+.1%} to {mean['lead_95'][1]:+.1%})")
    dest = ROOT/f'results/crosscorpus_compare_{a}_vs_{b}.json'
    dest.write_text(json.dumps(dict(a=a, b=b, draws=n, seed=seed, corpora=out, mean_over_corpora=mean), indent=1, default=float))
    print(f"wrote {dest}")

def answered_right(r:pd.DataFrame, threshold:float)->dict:
    """Adults' clips scored as a user who counts 'uncertain' and 'no speech' as not right would: the balanced share
    answered and right, the coverage and the accuracy on the answered clips."""
    p = r.p_female.to_numpy(); y = (r.gender == 'female').to_numpy()
    ans = np.maximum(p, 1 - p) >= threshold; ok = ((p >= 0.5) == y) & ans   # NaN (no speech): never answered
    return dict(threshold=float(threshold), balanced_right=float(np.mean([ok[y].mean(), ok[~y].mean()])),
                coverage=float(ans.mean()), answered_accuracy=float(ok[ans].mean()) if ans.any() else None)

def transfer_threshold(r:pd.DataFrame, target_accuracy=0.97, min_coverage=0.9)->float:
    """The calibration's rule (`choose_threshold`) on each corpus of R, clips of corpora their models never heard; the
    lowest of those thresholds, so that each of these corpora is answered on at least MIN_COVERAGE of its clips."""
    from voicegender.calibrate import choose_threshold
    t = [choose_threshold(np.stack([d.p_female, 1 - d.p_female], 1), (d.gender == 'male').astype(int).to_numpy(),
                          target_accuracy, min_coverage)['threshold'] for _,d in r.dropna(subset=['p_female']).groupby('corpus')]
    return max(0.5, min(t))

def coverage(recipe):
    """How the 'uncertain' threshold serves a corpus never heard, through `predict`'s path (RECIPE's three seeds, adults;
    `predict` must have run for each): the fold's own threshold (fitted on its validation speakers), a threshold fitted on the other folds'
    held-out corpora (`transfer_threshold`: nested, the test corpus plays no part), and none (0.5). Writes
    results/crosscorpus_coverage_RECIPE.json."""
    from voicegender.data import ADULT_AGE
    from voicegender.report import seed_levers
    out = {}
    for lever in seed_levers(recipe):
        runs = {f: OUT/(lever + PREDICT_SUFFIX)/f'fold{f}' for f in (0, 1, 2)}
        pred = {f: (lambda r: r[~(r.age < ADULT_AGE)])(pd.read_csv(d/'test_predictions.csv')) for f,d in runs.items()}
        for f,r in pred.items():
            own = json.loads((runs[f]/'scores.json').read_text())['calibration']['threshold']
            moved = transfer_threshold(pd.concat([pred[g] for g in pred if g != f]))
            rows = {k: answered_right(r, t) for k,t in (('own', own), ('transferred', moved), ('none', 0.5))}
            out.setdefault(r.corpus.iloc[0], {})[lever] = rows
            print(f"{lever} {r.corpus.iloc[0]}: " + '; '.join(f"{k} {v['threshold']:.2f}: right {v['balanced_right']:.1%}, "
                  f"coverage {v['coverage']:.0%} at {v['answered_accuracy']:.1%}" for k,v in rows.items()))
    mean = {k: float(np.mean([v[l][k]['balanced_right'] for v in out.values() for l in v])) for k in ('own', 'transferred', 'none')}
    print('mean balanced share answered and right: ' + ', '.join(f"{k} {v:.1%}" for k,v in mean.items()))
    (ROOT/f'results/crosscorpus_coverage_{recipe}.json').write_text(json.dumps(dict(levers=seed_levers(recipe), corpora=out, mean=mean), indent=1))

def noise(lever, baseline='resemblyzer', n=2000, seed=0):
    """Speaker bootstrap, per held-out corpus (adults): the balanced clip accuracy of LEVER, of its late fusion with the
    baseline, and of the baseline, when the corpus' test speakers are redrawn with replacement (within each gender);
    the 95 % interval of the fusion's lead over LEVER, per corpus and for the mean over the corpora. Writes results/crosscorpus_noise.json (another lever:
    results/crosscorpus_noise_LEVER.json)."""
    from voicegender.data import ADULT_AGE
    b = pd.read_csv(baseline_csv(f'{baseline} + LR'))[['wav', 'p_female']]
    rng, out, leads = np.random.default_rng(seed), {}, []
    for d in sorted((OUT/lever).glob('fold*')):
        r = pd.read_csv(d/'test_predictions.csv').merge(b, on='wav', suffixes=('', '_b'))
        r = r[~(r.age < ADULT_AGE)].assign(fused=lambda t: (t.p_female + t.p_female_b)/2)
        full, draws = redrawn(r, ['p_female', 'fused', 'p_female_b'], n, rng)
        lead = draws[:, 1] - draws[:, 0]; leads.append(lead)
        out[r.corpus.iloc[0]] = dict(speakers={g: len(v) for g,v in speaker_rows(r).items()}, clips=len(r),
            lever=full['p_female'], fusion=full['fused'], baseline=full['p_female_b'],
            fusion_lead=float(full['fused'] - full['p_female']), fusion_lead_95=interval_95(lead),
            p_fusion_not_ahead=float((lead <= 0).mean()))
        o = out[r.corpus.iloc[0]]
        print(f"{r.corpus.iloc[0]}: {lever} {o['lever']:.1%}, fusion {o['fusion']:.1%}, {baseline} {o['baseline']:.1%}; "
              f"fusion lead {o['fusion_lead']:+.1%} (95 % {o['fusion_lead_95'][0]:+.1%} to {o['fusion_lead_95'][1]:+.1%}; "
              f"share of draws not ahead {o['p_fusion_not_ahead']:.3f})")
    pooled = np.mean(leads, 0)   # draw by draw, each corpus' speakers redrawn independently: the mean lead over the corpora
    mean = dict(fusion_lead=float(np.mean([o['fusion_lead'] for o in out.values()])),
                fusion_lead_95=interval_95(pooled),
                p_fusion_not_ahead=float((pooled <= 0).mean()))
    print(f"mean over the {len(out)} corpora: fusion lead {mean['fusion_lead']:+.1%} (95 % {mean['fusion_lead_95'][0]:+.1%} to "
          f"{mean['fusion_lead_95'][1]:+.1%}; share of draws not ahead {mean['p_fusion_not_ahead']:.3f})")
    dest = ROOT/('results/crosscorpus_noise.json' if lever == 'level_mic_cmn' else f'results/crosscorpus_noise_{lever}.json')
    dest.write_text(json.dumps(dict(lever=lever, baseline=f'{baseline} + LR', draws=n, seed=seed, corpora=out,
                                    mean_over_corpora=mean), indent=1))
    print(f"wrote {dest}")

def with_heads(fold_dir:Path, heads:tuple)->pd.DataFrame: # the fold's test clips, with p_r and p_y: the two heads' p(female)
    "A fold's test predictions joined with those of the Resemblyzer head and the YIN head (`heads`: their baseline names)."
    r = pd.read_csv(fold_dir/'test_predictions.csv')
    for b,k in zip(heads, ('p_r', 'p_y')):
        r = r.merge(pd.read_csv(baseline_csv(b))[['wav', 'p_female']].rename(columns={'p_female': k}), on='wav')
    return r

def noise3(lever, n=2000, seed=0, predict_input=False):
    """Would a third source help the shipped `--fusion`? Speaker bootstrap as in `noise`, per held-out corpus (adults):
    LEVER alone, fused with Resemblyzer + LR (`predict --fusion`), and fused with Resemblyzer + LR and the YIN
    statistics' GBM (no pyin), each the plain mean of the sources' calibrated p(female), answered at 0.5. The 95 %
    intervals of the three-source fusion's lead over LEVER and over the two-source fusion, and of the two-source
    fusion's over LEVER, same redraws.
    With `predict_input`, the heads fitted on `Predictor.head_input` and pooled by `pool_log_odds` (as `predict --fusion
    resemblyzer,yin` runs them; give LEVER's through-`predict` folds, LEVER_predict, to score exactly what users get).
    Writes results/crosscorpus_fusion3_LEVER[_heads_predict_input].json."""
    from voicegender.data import ADULT_AGE
    from voicegender.deploy import pool_log_odds
    heads = (HEAD_BASELINES['resemblyzer'], HEAD_BASELINES['yin']) if predict_input else ('Resemblyzer + LR', YIN_GBM)
    pool = (lambda *q: pool_log_odds(q)) if predict_input else (lambda *q: np.mean(q, 0))   # as `predict --fusion` pools them
    rng, out, leads = np.random.default_rng(seed), {}, {'over_lever': [], 'over_fusion': [], 'fusion_over_lever': []}
    for d in sorted((OUT/lever).glob('fold*')):
        r = with_heads(d, heads)
        r = r[~(r.age < ADULT_AGE)].assign(two=lambda t: pool(t.p_female, t.p_r), three=lambda t: pool(t.p_female, t.p_r, t.p_y))
        cols = ('p_female', 'two', 'three')
        full, draws = redrawn(r, cols, n, rng); o = out[r.corpus.iloc[0]] = full
        for k,(i,j) in (('over_lever', (2, 0)), ('over_fusion', (2, 1)), ('fusion_over_lever', (1, 0))):   # (i over j)
            lead = draws[:, i] - draws[:, j]; leads[k].append(lead)
            o[k] = dict(lead=float(o[cols[i]] - o[cols[j]]), lead_95=interval_95(lead))
        print(f"{r.corpus.iloc[0]}: {lever} {o['p_female']:.1%}, + Resemblyzer {o['two']:.1%}, + Resemblyzer + YIN GBM {o['three']:.1%}; "
              + '; '.join(f"lead {k.replace('_', ' ')} {o[k]['lead']:+.1%} (95 % {o[k]['lead_95'][0]:+.1%} to {o[k]['lead_95'][1]:+.1%})"
                          for k in leads), flush=True)
    mean = {k: dict(lead=float(np.mean([o[k]['lead'] for o in out.values()])),
                    lead_95=interval_95(np.mean(v, 0))) for k,v in leads.items()}
    print('mean over the corpora: ' + '; '.join(f"lead {k.replace('_', ' ')} {m['lead']:+.1%} (95 % {m['lead_95'][0]:+.1%} to "
                                              f"{m['lead_95'][1]:+.1%})" for k,m in mean.items()))
    dest = ROOT/f"results/crosscorpus_fusion3_{lever}{'_heads_predict_input' if predict_input else ''}.json"
    dest.write_text(json.dumps(dict(lever=lever, sources=list(heads), draws=n, seed=seed, corpora=out,
                                    mean_over_corpora=mean), indent=1))
    print(f"wrote {dest}")

def pooling(lever):
    """How to pool the sources of `predict --fusion`: the mean of their calibrated p(female) or of their log-odds
    (`pool_log_odds`), for LEVER's through-`predict` folds (give LEVER_predict) with the heads fitted on `predict`'s
    input; each judged against the mean of the thresholds, as `predict` does. Balanced accuracy, ECE, coverage and
    accuracy answered, adults, and adults without the label suspects. Writes results/crosscorpus_pooling_LEVER.json."""
    from voicegender.crosscorpus import corpus_scores
    from voicegender.deploy import pool_log_odds
    heads = tuple(HEAD_BASELINES.values())
    cal = json.loads((OUT/'baselines.json').read_text())
    thr = {h: {r['fold']: r['calibration']['threshold'] for r in cal[h]} for h in heads}
    rules = {'mean of probabilities': lambda ps: np.mean(ps, 0), 'mean of log-odds': pool_log_odds}
    audit, out = suspects(), {}
    for d in sorted((OUT/lever).glob('fold*')):
        sc = json.loads((d/'scores.json').read_text()); f, t0 = sc['fold'], sc['calibration']['threshold']
        r = with_heads(d, heads); c = r.corpus.iloc[0]
        sources = {'alone': ['p_female'], 'with Resemblyzer': ['p_female', 'p_r'], 'with YIN GBM': ['p_female', 'p_y'],
                   'with Resemblyzer and YIN GBM': ['p_female', 'p_r', 'p_y']}
        head_of = {'p_r': heads[0], 'p_y': heads[1]}
        for name,cols in sources.items():
            t = np.mean([t0, *(thr[head_of[k]][f] for k in cols[1:])])
            for rule,pool in rules.items():
                if name == 'alone' and rule != 'mean of probabilities': continue
                s_ = corpus_scores(r.assign(p_female=pool([r[k].to_numpy() for k in cols])), t, audit)[c]
                out.setdefault(c, {})[f'{name}, {rule}' if name != 'alone' else name] = {
                    g: {k: s_[g][k] for k in ('balanced_accuracy', 'ece', 'coverage', 'answered_accuracy')} for g in s_ if s_[g].get('n_clips') and g != 'children'}
        print(c + ': ' + '; '.join(f"{k} {v['adults']['balanced_accuracy']:.1%} ECE {v['adults']['ece']:.1%}" for k,v in out[c].items()), flush=True)
    dest = ROOT/f'results/crosscorpus_pooling_{lever}.json'
    dest.write_text(json.dumps(dict(lever=lever, heads=list(heads), corpora=out), indent=1)); print(f"wrote {dest}")

def window_pooling(lever):
    """How `predict` should pool a clip's 1 s windows: the mean of their calibrated p(female) (the rule now) or of their
    log-odds. LEVER's fold models score the test clips as `predict` does, keeping each window's probability
    (results/crosscorpus/LEVER_windows/foldN/windows.csv, resumable per fold); each rule is judged against the fold's
    threshold. Clips without speech count as wrong, as in `predict`. Writes results/crosscorpus_window_pooling_LEVER.json."""
    from voicegender.core import load_audio
    from voicegender.crosscorpus import corpus_scores
    from voicegender.deploy import Predictor, pool_log_odds
    rules = {'mean of probabilities': lambda ps: np.mean(ps, 0), 'mean of log-odds': pool_log_odds}
    audit, out = suspects(), {}
    for src in sorted((OUT/lever).glob('fold*')):
        dest = OUT/f'{lever}_windows'/src.name/'windows.csv'
        sc = json.loads((src/'scores.json').read_text()); cal = sc['calibration']
        test = pd.read_csv(src/'test_predictions.csv')
        if not dest.exists():
            pred, rows, t = Predictor(src/'model.safetensors', temperature=cal['temperature'], threshold=cal['threshold'], threads=1), [], time.time()
            for w in test.wav:
                res, y, wins = pred.clip_windows(load_audio(w))
                pw = pred.window_probs(*pred.images(y, wins), len(wins)) if wins else np.zeros((0, 2))
                rows += [dict(wav=w, window=i, p_female=float(q)) for i,q in enumerate(pw[:, 0])]
            dest.parent.mkdir(parents=True, exist_ok=True); pd.DataFrame(rows).to_csv(dest, index=False)
            print(f"{src.name}: {len(test)} clips, {len(rows)} windows, {time.time() - t:.0f} s", flush=True)
        win = pd.read_csv(dest).groupby('wav').p_female.apply(list)
        c = test.corpus.iloc[0]; out[c] = {'windows_per_clip': float(win.map(len).reindex(test.wav).fillna(0).mean())}
        for rule,pool in rules.items():
            p = test.wav.map(lambda w: float(pool(win[w])) if w in win.index else np.nan).to_numpy()
            d = test.assign(p_female=np.where(np.isnan(p), test.gender != 'female', p))   # no speech: the wrong answer
            s_ = corpus_scores(d, cal['threshold'], audit)[c]
            out[c][rule] = {g: {k: s_[g][k] for k in ('balanced_accuracy', 'ece', 'coverage', 'answered_accuracy')}
                            for g in s_ if s_[g].get('n_clips')}
        print(f"{c}: " + '; '.join(f"{r} {out[c][r]['adults']['balanced_accuracy']:.1%} ECE {out[c][r]['adults']['ece']:.1%}" for r in rules), flush=True)
    dest = ROOT/f'results/crosscorpus_window_pooling_{lever}.json'
    dest.write_text(json.dumps(dict(lever=lever, corpora=out), indent=1)); print(f"wrote {dest}")

def cost(n=60, seed=0):
    """Milliseconds a clip, one thread, on `n` test clips drawn at random: the shipped model's whole answer
    (`Predictor.predict_file`), the features each fusion adds (Resemblyzer's embedding; the acoustic statistics,
    pyin F0 included, and without pyin), each from the decoded audio, and the whole answer with the shipped heads
    (`--fusion resemblyzer`, `--fusion resemblyzer,yin`). Writes results/fusion_cost.json."""
    import torch; torch.set_num_threads(1)
    from voicegender.core import load_audio
    from voicegender.baselines import acoustic_features, resemblyzer_encoder, resemblyzer_embedding
    from voicegender.deploy import Predictor
    wavs = list(pd.read_csv(ROOT/'results/crosscorpus_clips.csv').sample(n, random_state=seed).path)
    ys, pred, enc = [load_audio(w) for w in wavs], Predictor(threads=1), resemblyzer_encoder()
    def ms(f, xs):
        f(xs[0]); t = time.perf_counter()
        for x in xs: f(x)
        return round(1000*(time.perf_counter() - t)/len(xs), 1)
    res = dict(clips=n, audio_s_mean=round(float(np.mean([len(y) for y in ys]))/16_000, 2), threads=1,
               ms_per_clip={'shipped model (predict_file)': ms(pred.predict_file, wavs),
                            'Resemblyzer embedding': ms(lambda y: resemblyzer_embedding(enc, y), ys),
                            'acoustic statistics (pyin, YIN, spectral, MFCC)': ms(acoustic_features, ys),
                            'YIN statistics (YIN, spectral, MFCC; no pyin)': ms(lambda y: acoustic_features(y, pyin=False), ys)})
    for fusion in ('resemblyzer', 'resemblyzer,yin'):   # the whole answer with the shipped heads, as users get it
        res['ms_per_clip'][f'shipped model --fusion {fusion} (predict_file)'] = ms(Predictor(threads=1, fusion=fusion).predict_file, wavs)
    one = res['ms_per_clip']['shipped model (predict_file)']
    res['times_the_model_alone'] = {k: round(v/one, 2) for k,v in res['ms_per_clip'].items() if '--fusion' in k}
    print(json.dumps(res, indent=1)); (ROOT/'results/fusion_cost.json').write_text(json.dumps(res, indent=1))

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('step', choices=['prepare', 'train', 'windows', 'predict', 'baselines', 'table', 'ship', 'noise', 'noise3', 'ship_fusion', 'cost', 'pooling', 'window_pooling', 'audit', 'groups', 'compare', 'coverage'])
    p.add_argument('lever', nargs='?', default='level_mic'); p.add_argument('against', nargs='?', default='level_mic_cmn')
    p.add_argument('--folds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--recipes', nargs='+', default=list(RECIPES))
    p.add_argument('--predict-input', action='store_true', help="noise3: the heads fitted on what `predict` gives them")
    a = p.parse_args()
    os.chdir(ROOT)
    {'prepare': lambda: prepare(a.recipes), 'train': lambda: train(a.lever, a.folds), 'predict': lambda: predict(a.lever, a.folds), 'baselines': baselines, 'table': table,
     'windows': windows, 'ship': lambda: ship(a.lever), 'noise': lambda: noise(a.lever), 'noise3': lambda: noise3(a.lever, predict_input=a.predict_input), 'ship_fusion': ship_fusion, 'cost': cost, 'pooling': lambda: pooling(a.lever), 'window_pooling': lambda: window_pooling(a.lever), 'audit': audit, 'groups': groups, 'compare': lambda: compare(a.lever, a.against), 'coverage': lambda: coverage(a.lever)}[a.step]()
