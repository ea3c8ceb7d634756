"""Who speaks when, measured: voicegender segment (and inaSpeechSegmenter 0.6.8, when .venv-peer is there) on long
"conversations" built from clips of speakers the model never heard.

    python bench/segment.py [--model results/<run>/model.safetensors] [--minutes 5] [--tune]

Speakers: results/heldout_speakers.csv when it exists (path, speaker, gender per clip), else a deterministic 20 % of
the speakers of each gender of each corpus (hash of the speaker id): AudioMNIST_AZ, and the adults (age >= 16) of
speechocean762 and BAVED, from ../shared/data. Half of them (again by hash) are *development* speakers, used only to
choose the decoder's settings (--tune); the scores are on the other half. A model trained on AZ must have been trained
without these AZ speakers (voicegender train --exclude-speakers; the list is written to
.tmp/segment_bench/speakers.csv and printed).

Each corpus gives one conversation (--minutes long) of turns by alternating speakers (a speaker never follows
themself; both genders in the pool), 1-4 clips a turn, 0.3-1.5 s pauses, in three versions: clean; with white noise at
15 dB SNR; and with 2-6 s stretches of music-like tones and noise inserted after every third turn. The reference:
each clip's speech (Silero VAD on the clean clip, first to last speech sample) carries its speaker's gender,
everything else is no speech; scored on 10 ms frames, 0.1 s either side of a reference boundary not scored.

Scores per tool: frame accuracy on the speech (the label must be the right gender; split into missed speech and wrong
gender), the same accuracy without the pauses of 0.3 s or more inside a clip (which the reference counts as speech:
read speech has long ones), false speech on the non-speech
(and on the music stretches alone), error of the female share of speaking time (points), speed (seconds of audio per
CPU second: real time per core; each tool runs in its own process with one thread) and peak memory (the process'
peak RSS). Writes results/segment_bench.json and prints a table.

    python bench/segment.py --pad-probe 0 0.05 0.1 0.2   # after a run: its saved windows decoded with wider speech stretches
"""
import argparse, hashlib, json, os, subprocess, sys, time, resource
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent/'shared/data' if (ROOT.parent/'shared/data').exists() else Path('/work/shared/data')
WORK = ROOT/'.tmp/segment_bench'
PEER = Path(os.environ.get('VOICEGENDER_PEER', ROOT.parent/'main/.venv-peer/bin/python'))
if not PEER.exists(): PEER = ROOT/'.venv-peer/bin/python'
SR, FRAME, COLLAR = 16_000, 0.01, 0.1
LABELS = ('no speech', 'female', 'male')


# ------------------------------------------------------------------ speakers and clips
def h(s): return hashlib.sha1(str(s).encode()).hexdigest()

def corpus_clips()->pd.DataFrame:
    "path, speaker, gender, corpus of every usable clip (adults only where ages are known)."
    held = ROOT/'results/heldout_speakers.csv'
    if held.exists():   # the shipped model's held-out speakers (one row a speaker): their clips, adults only
        from voicegender.data import corpus_table
        t = pd.read_csv(held); t = t[~t.child.astype(bool)]
        c = corpus_table([SHARED/n for n in ('audiomnist_az', 'speechocean762', 'baved')])[0]
        return c[c.speaker.isin(t.speaker)][['path', 'speaker', 'gender', 'corpus']].astype({'speaker': str}).reset_index(drop=True)
    from voicegender.data import clip_table
    parts = []
    az = SHARED/'audiomnist_az'
    if az.exists():
        c = clip_table(az)[0]; parts.append(c.assign(corpus='audiomnist_az', path=c.path.astype(str))[['path', 'speaker', 'gender', 'corpus']])
    for name in ('speechocean762', 'baved'):
        m = SHARED/name/'manifest.csv'
        if m.exists():
            t = pd.read_csv(m); t = t[t.age >= 16]
            parts.append(t.assign(corpus=name, path=[str(SHARED/name/p) for p in t.path])[['path', 'speaker', 'gender', 'corpus']])
    if not parts: raise SystemExit(f"no corpus found in {SHARED}")
    return pd.concat(parts).astype({'speaker': str}).reset_index(drop=True)

def pick_speakers(clips:pd.DataFrame, frac:float|None=None)->pd.DataFrame:
    "A deterministic share of each corpus' speakers of each gender (all held-out speakers when they are listed), split into dev and test halves."
    if frac is None: frac = 1.0 if (ROOT/'results/heldout_speakers.csv').exists() else 0.2
    rows = []
    for (corpus, g), d in clips.groupby(['corpus', 'gender']):
        spk = sorted(d.speaker.unique(), key=lambda s: h(f'segment:{corpus}:{s}'))
        for i,s in enumerate(spk[:max(2, round(frac*len(spk)))]):
            rows.append(dict(corpus=corpus, speaker=s, gender=g, part='test' if i % 2 == 0 else 'dev'))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ conversations
def music_like(seconds, rng):
    "Harmonic notes from a scale with decaying envelopes, sometimes over a band of noise: not speech."
    import scipy.signal as ss
    n = int(seconds*SR); y = np.zeros(n); t0 = 0
    while t0 < n:
        d = int(rng.uniform(0.2, 0.6)*SR); t = np.arange(min(d, n - t0))/SR
        for semis in rng.choice([0, 3, 5, 7, 10, 12, 15], size=rng.integers(1, 4), replace=False):
            f = 196*2**((semis + rng.integers(0, 12))/12)
            y[t0:t0+len(t)] += sum(np.sin(2*np.pi*k*f*t)/k for k in range(1, 7))*np.exp(-3*t)
        t0 += d
    if rng.uniform() < 0.5:
        b, a = ss.butter(2, [rng.uniform(300, 1000), rng.uniform(2000, 6000)], 'bandpass', fs=SR)
        y += ss.lfilter(b, a, rng.normal(0, 1, n))*0.5
    return (y/np.abs(y).max()*rng.uniform(0.2, 0.4)).astype(np.float32)

PAUSE = 0.3   # a pause inside a clip at least this long (between Silero's speech stretches) is not scored by the pauses view

def clip_audio(path, cache={}):
    "A clip at 16 kHz without DC offset, peak 0.5, its speech span (Silero, first to last sample) and its pauses >= PAUSE."
    if path not in cache:
        from voicegender.core import load_audio
        from voicegender.speech import speech_segments
        y = load_audio(path); y = y - y.mean(); y = (y/max(np.abs(y).max(), 1e-6)*0.5).astype(np.float32)
        s = speech_segments(y)
        pauses = [(a[1], b[0]) for a,b in zip(s, s[1:]) if b[0] - a[1] >= PAUSE*SR]
        cache[path] = (y, (s[0][0], s[-1][1]) if s else None, pauses)
    return cache[path]

def build_pieces(clips:pd.DataFrame, minutes:float, seed:int):
    "Turns of alternating speakers: (kind, audio, label) pieces, label per sample (0 no speech, 1 f, 2 m; + 3 in a pause >= PAUSE inside a clip)."
    rng = np.random.default_rng(seed)
    by_spk = {s: d.path.tolist() for s,d in clips.groupby('speaker')}
    gender = dict(zip(clips.speaker, clips.gender))
    pieces, total, prev, turn = [], 0., None, 0
    while total < minutes*60:
        spk = rng.choice([s for s in sorted(by_spk) if s != prev]); prev = spk
        gain = rng.uniform(0.5, 1.0)
        for path in rng.choice(by_spk[spk], size=rng.integers(1, 5)):
            y, span, pauses = clip_audio(path)
            if span is None: continue
            lab = np.zeros(len(y), np.int8); lab[span[0]:span[1]] = LABELS.index(gender[spk])
            for a,b in pauses: lab[a:b] += 3
            pieces.append(('speech', y*gain, lab)); total += len(y)/SR
        pause = np.zeros(int(rng.uniform(0.3, 1.5)*SR), np.float32)
        pieces.append(('pause', pause, np.zeros(len(pause), np.int8))); total += len(pause)/SR
        turn += 1
        if turn % 3 == 0: pieces.append(('music', None, None))     # a slot: filled in the music version only
    return pieces

def render(pieces, version:str, rng):
    "Audio, per-sample labels and the music mask of one version: clean, noise15, music."
    ys, labs, mus = [], [], []
    for kind, y, lab in pieces:
        if kind == 'music':
            if version != 'music': continue
            y = music_like(rng.uniform(2, 6), rng); lab = np.zeros(len(y), np.int8)
        ys.append(y); labs.append(lab); mus.append(np.full(len(y), kind == 'music'))
    y, lab, mus = np.concatenate(ys), np.concatenate(labs), np.concatenate(mus)
    y = y + rng.normal(0, 1e-3, len(y))                               # a faint floor: no digital silence
    if version == 'noise15':
        p = np.mean(y[lab > 0]**2)
        y = y + rng.normal(0, np.sqrt(p/10**1.5), len(y))
    return np.clip(y, -1, 1).astype(np.float32), lab, mus

def frames(lab:np.ndarray, mus:np.ndarray):
    """10 ms reference frames (majority label; a clip's pauses count as its speaker's speech), music mask, the scored
    mask (no collar around boundaries) and the pauses mask (frames mostly in a pause >= PAUSE inside a clip)."""
    k = int(FRAME*SR); n = len(lab)//k
    lab, mus = lab[:n*k].reshape(n, -1), mus[:n*k].reshape(n, -1)
    pause = (lab >= 3).mean(1) > 0.5
    ref = np.array([np.bincount(r, minlength=3).argmax() for r in lab % 3]); c = int(COLLAR/FRAME)
    change = np.flatnonzero(np.diff(ref)) + 1
    scored = np.ones(n, bool)
    for b in change: scored[max(0, b - c):b + c] = False
    return ref, mus.mean(1) > 0.5, scored, pause

def build(minutes:float, dev_minutes:float)->list[dict]:
    "Write the conversations (WAV + reference frames) to WORK, once; return their descriptions."
    WORK.mkdir(parents=True, exist_ok=True)
    clips = corpus_clips(); picks = pick_speakers(clips)
    picks.to_csv(WORK/'speakers.csv', index=False)
    out = []
    for part, minutes_ in (('test', minutes), ('dev', dev_minutes)):
        for corpus in sorted(picks.corpus.unique()):
            spk = picks[(picks.part == part) & (picks.corpus == corpus)]
            c = clips[(clips.corpus == corpus) & clips.speaker.isin(spk.speaker)]
            versions = ('clean', 'noise15', 'music')
            todo = [(v, WORK/f'{part}_{corpus}_{v}_{minutes_:g}min.wav') for v in versions]
            have = [p.exists() and p.with_suffix('.npz').exists() for _,p in todo]
            if not all(have) or not all('pause' in np.load(p.with_suffix('.npz')) for _,p in todo):
                pieces = build_pieces(c, minutes_, seed=int(h(f'{part}:{corpus}')[:8], 16))
                for i,(v, p) in enumerate(todo):
                    y, lab, mus = render(pieces, v, np.random.default_rng(i))
                    ref, m, scored, pause = frames(lab, mus)
                    if all(have):   # an earlier run's conversation: only the pauses mask is new; the audio must be the same
                        old = np.load(p.with_suffix('.npz'))
                        if not (np.array_equal(old['ref'], ref) and np.array_equal(old['scored'], scored)):
                            raise SystemExit(f"{p}: rebuilt differently from the saved one; delete {WORK} and run again")
                    else: sf.write(p, y, SR, subtype='PCM_16')
                    np.savez(p.with_suffix('.npz'), ref=ref, music=m, scored=scored, pause=pause)
            for v,p in todo:
                out.append(dict(part=part, corpus=corpus, version=v, path=str(p), seconds=sf.info(str(p)).duration,
                                speakers=spk.speaker.tolist(), genders=spk.gender.tolist()))
    return out


# ------------------------------------------------------------------ the tools, each in its own process
def worker_ours(model, paths):
    "Raw observations of each file (speech, windows, probs) saved next to it; timing and peak memory on stdout."
    import voicegender.speech   # no PyTorch: the network and Silero run in onnxruntime, one thread (memory as a user sees it)
    if os.environ.get('BENCH_VAD_RESET'): voicegender.speech.VAD_RESET = float(os.environ['BENCH_VAD_RESET'])   # --vad-resets
    from voicegender.deploy import Predictor
    from voicegender.segment import segment_stream, analysis_blocks, file_chunks, finish, BLOCK, CONTEXT
    pred = Predictor(model, threads=1)
    rss = lambda: int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])/1024
    loaded = rss()                                       # the libraries and the model, before any audio
    res = {}
    for p in paths:
        t0 = time.process_time()
        raw = segment_stream(analysis_blocks(file_chunks(p), int(BLOCK*SR), int(max(CONTEXT, pred.seconds + 0.5)*SR)), pred)
        finish(raw, pred.threshold)
        res[p] = dict(cpu_s=time.process_time() - t0)
        np.savez(Path(p).with_suffix('.ours.npz'), speech=np.array(raw['speech']).reshape(-1, 2), windows=raw['windows'],
                 probs=raw['probs'], duration=raw['duration'])
    print(json.dumps(dict(files=res, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024, loaded_rss_mb=loaded,
                          threshold=pred.threshold, model=str(pred.model_path))))

PEER_SCRIPT = r'''
import sys, json, time, resource, os
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1); tf.config.threading.set_inter_op_parallelism_threads(1)
from inaSpeechSegmenter import Segmenter
seg = Segmenter(vad_engine='smn', detect_gender=True)
out = {}
for p in sys.argv[1:]:
    t0 = time.process_time()
    r = seg(p)
    out[p] = dict(cpu_s=time.process_time() - t0, segments=[(l, float(a), float(b)) for l,a,b in r])
print('@@' + json.dumps(dict(files=out, peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)))
'''

def run_peer(paths):
    if not PEER.exists(): return None, f"{PEER} not found: inaSpeechSegmenter not run (scripts/setup_peer.sh creates it)"
    r = subprocess.run([str(PEER), '-c', PEER_SCRIPT, *paths], capture_output=True, text=True,
                       env={**os.environ, 'CUDA_VISIBLE_DEVICES': '', 'OMP_NUM_THREADS': '1'})
    line = [l for l in r.stdout.splitlines() if l.startswith('@@')]
    if r.returncode or not line: return None, f"inaSpeechSegmenter failed (exit {r.returncode}): {r.stderr[-800:]}"
    return json.loads(line[0][2:]), None


# ------------------------------------------------------------------ scoring
def seg_frames(segments, n):
    "System label of each 10 ms frame from (label, start, stop) segments; inaSpeechSegmenter's labels mapped."
    out = np.zeros(n, np.int8)
    for lab,a,b in segments:
        k = {'female': 1, 'male': 2}.get(lab, 0)
        if k: out[int(round(a/FRAME)):int(round(b/FRAME))] = k
    return out

def score(sys_frames, ref, music, scored, pause):
    """Frame scores. The reference counts a clip's pauses as its speaker's speech; `speech_accuracy_no_pauses` leaves
    out the frames of pauses >= PAUSE inside a clip, which a finer reference would count as no speech, and
    `female_share_error_no_pauses_pts` compares the female share with that finer reference's."""
    sp, ns, spp = scored & (ref > 0), scored & (ref == 0), scored & (ref > 0) & ~pause
    share = lambda f: (f == 1).sum()/max((f > 0).sum(), 1)
    return dict(speech_accuracy=float((sys_frames[sp] == ref[sp]).mean()),
                missed_speech=float((sys_frames[sp] == 0).mean()),
                wrong_gender=float(((sys_frames[sp] > 0) & (sys_frames[sp] != ref[sp])).mean()),
                speech_accuracy_no_pauses=float((sys_frames[spp] == ref[spp]).mean()),
                pause_share=float(pause[sp].mean()),
                false_speech=float((sys_frames[ns] > 0).mean()),
                false_speech_music=float((sys_frames[scored & music] > 0).mean()) if (scored & music).any() else None,
                frame_accuracy=float((sys_frames[scored] == ref[scored]).mean()),
                female_share_error_pts=float(abs(share(sys_frames) - share(ref))*100),
                female_share_error_no_pauses_pts=float(abs(share(sys_frames) - share(np.where(pause, 0, ref)))*100),
                female_share_ref=float(share(ref)))

def ours_segments(path, threshold, **decoder):
    from voicegender.segment import finish
    z = np.load(Path(path).with_suffix('.ours.npz'))
    raw = dict(speech=[tuple(r) for r in z['speech']], windows=z['windows'], probs=z['probs'], duration=float(z['duration']))
    r = finish(raw, threshold, **decoder)
    return [(l, a, b) for l,a,b,_ in r['segments']], r['totals']

def ref_of(path):
    z = np.load(Path(path).with_suffix('.npz')); return z['ref'], z['music'], z['scored'], z['pause']

def score_file(path, threshold, **decoder):
    "Our frame scores on one conversation, its saved window probabilities decoded with `decoder`'s settings."
    ref = ref_of(path)
    return score(seg_frames(ours_segments(path, threshold, **decoder)[0], len(ref[0])), *ref)

def vad_reset():
    from voicegender.speech import VAD_RESET; return VAD_RESET

def balanced(s): return (s['speech_accuracy'] + 1 - s['false_speech'])/2

def tune(dev, threshold):
    "The decoder settings with the best mean balanced score (speech accuracy and 1 - false speech) on the dev conversations."
    from voicegender.segment import DECODER
    grid = [dict(switch=s, pause=p, min_turn=t, min_pause=mp) for s in (0.25, 0.5, 1, 2, 3, 5, 8) for p in (0.2, 0.5, 1.0, 2.0)
            for t in (0.25, 0.5, 1.0) for mp in (0.3, 0.5, 0.8)]
    def objective(**g):
        return float(np.mean([balanced(score_file(f['path'], threshold, **g)) for f in dev]))
    scores = [(objective(**g), g) for g in grid]
    best = max(scores, key=lambda x: x[0])
    return dict(objective="mean over dev conversations of (speech accuracy + 1 - false speech)/2", best=best[1],
                best_dev_score=best[0], default=dict(DECODER), default_dev_score=objective(), grid_size=len(grid),
                grid=[dict(score=round(sc, 4), **g) for sc,g in scores])


def vad_resets(values, dev, model):
    """Dev conversations scored (segment.DECODER, balanced score) with Silero's state started afresh every r seconds,
    for each r of `values` (0: never); the window probabilities are recomputed for each."""
    out = []
    for r in values:
        ours = run_ours([f['path'] for f in dev], model, {'BENCH_VAD_RESET': str(r)})
        sc = [score_file(f['path'], ours['threshold']) for f in dev]
        row = dict(vad_reset_s=r, dev_score=float(np.mean([balanced(x) for x in sc])),
                   speech_accuracy=float(np.mean([x['speech_accuracy'] for x in sc])), false_speech=float(np.mean([x['false_speech'] for x in sc])),
                   by_version={v: float(np.mean([balanced(x) for x,f in zip(sc, dev) if f['version'] == v])) for v in sorted({f['version'] for f in dev})})
        print(f"VAD reset {r} s: dev score {row['dev_score']:.4f} (speech {row['speech_accuracy']:.4f}, false speech "
              f"{row['false_speech']:.4f}; {', '.join(f'{k} {v:.4f}' for k,v in row['by_version'].items())})", file=sys.stderr, flush=True)
        out.append(row)
    return out

def pad_probe(files, threshold, pads):
    """Dev and test conversations decoded (segment.DECODER) with each speech stretch widened by PAD seconds on both
    sides, for each pad: how much of the missed speech is the stretches' edges and the pauses inside clips, and what
    it costs in false speech. A probe from the saved window probabilities, not a setting of the package."""
    from voicegender.segment import finish
    out = []
    for pad in pads:
        for f in files:
            z = np.load(Path(f['path']).with_suffix('.ours.npz')); d = float(z['duration'])
            raw = dict(speech=[(max(0., a - pad), min(d, b + pad)) for a,b in z['speech']], windows=z['windows'],
                       probs=z['probs'], duration=d)
            ref = ref_of(f['path'])
            segs = [(l, a, b) for l,a,b,_ in finish(raw, threshold)['segments']]
            out.append(dict(pad_s=pad, part=f['part'], version=f['version'], corpus=f['corpus'], **score(seg_frames(segs, len(ref[0])), *ref)))
    t = pd.DataFrame(out).groupby(['pad_s', 'part', 'version'])[['speech_accuracy', 'false_speech', 'missed_speech', 'wrong_gender']].mean()
    return t

def run_ours(paths, model, env=None):
    r = subprocess.run([sys.executable, __file__, '--worker', *paths] + (['--model', model] if model else []),
                       capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})})
    if r.returncode: raise SystemExit(f"voicegender failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', help="NAME.safetensors (default: the model shipped in the package)")
    ap.add_argument('--minutes', type=float, default=5.); ap.add_argument('--dev-minutes', type=float, default=3.)
    ap.add_argument('--tune', action='store_true', help="choose the decoder settings on the dev conversations, and score "
                    "them on the test conversations too (as 'voicegender (dev-tuned)'; 'voicegender' uses segment.DECODER)")
    ap.add_argument('--no-peer', action='store_true'); ap.add_argument('--out', default='results/segment_bench.json')
    ap.add_argument('--note', default='', help="recorded with the results (e.g. which model this is)")
    ap.add_argument('--rescore', action='store_true', help="reuse the last run's window probabilities and "
                    "inaSpeechSegmenter output (saved in .tmp/segment_bench); only decode and score again")
    ap.add_argument('--vad-resets', type=float, nargs='+', help="first score the dev conversations with Silero's state "
                    "started afresh every R seconds, for each R given (0: never), as evidence for speech.VAD_RESET")
    ap.add_argument('--pad-probe', type=float, nargs='+', help="only decode the last run's saved windows again with the "
                    "speech stretches widened by each PAD (seconds); writes results/segment_pad_probe.json")
    ap.add_argument('--worker', nargs='*', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker is not None: return worker_ours(a.model, a.worker)
    if a.pad_probe:
        t = pad_probe(build(a.minutes, a.dev_minutes), json.loads((WORK/'ours.json').read_text())['threshold'], a.pad_probe)
        (ROOT/'results/segment_pad_probe.json').write_text(json.dumps([dict(zip(('pad_s', 'part', 'version'), k), **v)
                                                                       for k,v in t.to_dict('index').items()], indent=1))
        print(t.round(4).to_string()); return
    import torch; torch.set_num_threads(1)     # Silero on the reference clips
    t0 = time.time()
    files = build(a.minutes, a.dev_minutes)
    picks = pd.read_csv(WORK/'speakers.csv')
    az = sorted(str(s).split(':')[-1] for s in picks[picks.corpus == 'audiomnist_az'].speaker)
    print(f"{len(files)} conversations ({sum(f['seconds'] for f in files)/60:.0f} min) in {WORK}; AZ speakers used "
          f"(train the model without them: --exclude-speakers {' '.join(map(str, az))})", file=sys.stderr)
    paths = [f['path'] for f in files]
    reset_grid = None
    if a.vad_resets:   # before the main run, which then recomputes every file with the package's VAD_RESET
        reset_grid = vad_resets(a.vad_resets, [f for f in files if f['part'] == 'dev'], a.model)
        (WORK/'ours.json').unlink(missing_ok=True)
    if a.rescore and (WORK/'ours.json').exists(): ours = json.loads((WORK/'ours.json').read_text())
    else: ours = run_ours(paths, a.model); (WORK/'ours.json').write_text(json.dumps(ours))
    thr = ours['threshold']
    tuning = tune([f for f in files if f['part'] == 'dev'], thr) if a.tune else None
    if tuning: print(f"tuning on dev: best {tuning['best']} ({tuning['best_dev_score']:.3f}); segment.DECODER "
                     f"{tuning['default']} ({tuning['default_dev_score']:.3f})", file=sys.stderr)
    test = [f for f in files if f['part'] == 'test']
    old_rows = []
    if a.rescore and (WORK/'peer.json').exists(): peer, why = json.loads((WORK/'peer.json').read_text()), None
    elif a.rescore and (ROOT/a.out).exists():    # a run from before peer.json was kept: its inaSpeechSegmenter rows
        prev = json.loads((ROOT/a.out).read_text())
        old_rows = [r for r in prev['per_file'] if r['tool'] == 'inaSpeechSegmenter']
        peer, why = (dict(peak_rss_mb=prev['peak_rss_mb'].get('inaSpeechSegmenter')), None) if old_rows else (None, 'no earlier run')
    else:
        peer, why = (None, "--no-peer") if a.no_peer else run_peer([f['path'] for f in test])
        if peer: (WORK/'peer.json').write_text(json.dumps(peer))
    if why: print(f"note: {why}", file=sys.stderr)
    rows = []
    settings = [('voicegender', {})] + ([('voicegender (dev-tuned)', tuning['best'])] if tuning else [])
    for f in test:
        ref, mus, scored, pause = ref_of(f['path'])
        for name, cfg in settings:
            segs, tot = ours_segments(f['path'], thr, **cfg)
            rows.append(dict(tool=name, **{k: f[k] for k in ('corpus', 'version', 'seconds')},
                             **score(seg_frames(segs, len(ref)), ref, mus, scored, pause),
                             speed_x_realtime_per_core=f['seconds']/ours['files'][f['path']]['cpu_s'],
                             uncertain_share=tot['uncertain_share']))
        if peer and 'files' in peer:
            pf = peer['files'][f['path']]
            rows.append(dict(tool='inaSpeechSegmenter', **{k: f[k] for k in ('corpus', 'version', 'seconds')},
                             **score(seg_frames(pf['segments'], len(ref)), ref, mus, scored, pause),
                             speed_x_realtime_per_core=f['seconds']/pf['cpu_s']))
    rows += old_rows
    t = pd.DataFrame(rows)
    t['balanced'] = (t.speech_accuracy + 1 - t.false_speech)/2
    cols = ['speech_accuracy', 'missed_speech', 'wrong_gender', 'speech_accuracy_no_pauses', 'pause_share', 'false_speech', 'false_speech_music', 'balanced', 'female_share_error_pts', 'female_share_error_no_pauses_pts', 'speed_x_realtime_per_core']
    summary = t.groupby(['tool', 'version'])[cols].mean()
    overall = t.groupby('tool')[cols].mean()
    mem = {'voicegender': ours['peak_rss_mb'], 'voicegender after loading, before any audio': ours['loaded_rss_mb']} | (
           {'inaSpeechSegmenter': peer['peak_rss_mb']} if peer else {})
    res = dict(model=ours['model'], note=a.note, threshold=thr, peer=None if peer is None else 'inaSpeechSegmenter 0.6.8 (smn, gender)',
               peer_missing=why, frame_s=FRAME, collar_s=COLLAR, minutes=a.minutes,
               speakers=picks.to_dict('records'), tuning=tuning, vad_reset_s=vad_reset(), vad_reset_grid=reset_grid, per_file=rows,
               by_version={f'{k[0]} / {k[1]}': v for k,v in summary.to_dict('index').items()},
               overall=overall.to_dict('index'), peak_rss_mb=mem, wall_s=round(time.time() - t0, 1))
    from voicegender.core import atomic_write
    atomic_write(ROOT/a.out, json.dumps(res, indent=1, default=lambda o: None if o is None or (isinstance(o, float) and np.isnan(o)) else str(o)))
    pd.set_option('display.width', 200)
    print(summary.round(3).to_string()); print(); print(overall.round(3).to_string())
    print(f"\npeak RSS (MB): { {k: round(v) for k,v in mem.items()} }; model: {ours['model']}; written {a.out}")

if __name__ == '__main__': main()
