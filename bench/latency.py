#!/usr/bin/env python
"""End-to-end latency of one prediction: a 1 s clip from disk to probabilities.

Stages, each timed on every run, are the Predictor's own steps in the order `predict_audio` takes them: decode
(`load_audio`), vad (`Predictor.clip_windows`: level, Silero speech detection, the windows), features (`Predictor.images`),
model (`Predictor.window_probs` and `clip_answer`: the network, the calibrated softmax, the clip's answer). The answer is
checked against `Predictor.predict_file`'s. Prints one JSON object with the median and 90th percentile of each stage (ms).

    OMP_NUM_THREADS=1 python bench/latency.py --threads 1 --n 50                 # the model shipped in the package
    OMP_NUM_THREADS=1 python bench/latency.py --profile                          # the network's time by ResNet stage
    python bench/latency.py --model results/run/model.safetensors --clip my_wavs/x.wav
Without the shipped model (and no --model) it falls back to the tiny test model (say so in any number you report).
"""
import argparse, json, os, sys, tempfile, time, platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
def rel(p): p = Path(p).resolve(); return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model', help="NAME.safetensors with NAME.json beside it (default: the model shipped in the package, "
                                   "else the tiny test model); weights only, a .pkl is refused")
    p.add_argument('--clip', help="audio file (default: a 1 s synthetic sentence written to a temporary WAV)")
    p.add_argument('--n', type=int, default=50, help="timed runs (default: 50)")
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--threads', type=int, default=1, help="torch threads (default: 1)")
    p.add_argument('--out', default='results/bench_latency.json', help="where the numbers go (not written for the tiny model)")
    p.add_argument('--profile', action='store_true', help="instead: onnxruntime's own timing of the network's nodes at "
                   "batch 1 and 64, summed by ResNet stage, with each stage's weights (-> results/bench_latency_profile.json)")
    a = p.parse_args(argv)
    if a.profile: return profile(a.model, a.n, a.threads)
    os.environ.setdefault('OMP_NUM_THREADS', str(a.threads))
    import numpy as np, soundfile as sf, torch
    torch.set_num_threads(a.threads)
    from voicegender.core import SR, load_audio
    from voicegender.deploy import Predictor
    from voicegender.speech import synthetic_speech, silero_model
    from voicegender.model import shipped_model

    tmp = Path(tempfile.mkdtemp())
    model, tiny = a.model, False
    if model is None:
        try: model = shipped_model()
        except FileNotFoundError:
            from voicegender.train import tiny_learner
            import contextlib, io
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                model = tiny_learner(tmp/'tiny')
            tiny = True
    clip = a.clip
    if clip is None:
        y = np.concatenate([np.zeros(SR//10), synthetic_speech(0.8, 120), np.zeros(SR//10)])
        y = y + np.random.default_rng(0).normal(0, 0.003, len(y))
        clip = tmp/'clip.wav'; sf.write(clip, y.astype(np.float32), SR, subtype='PCM_16')

    try: pred = Predictor(model)
    except (FileNotFoundError, ValueError) as e: sys.exit(f"error: {e}")
    silero_model(); torch.set_num_threads(a.threads)
    stages = ['decode', 'vad', 'features', 'model']
    times = {s: [] for s in stages + ['total']}
    n_windows = None
    for i in range(a.warmup + a.n):
        t0 = time.perf_counter(); y = load_audio(clip, SR, pred.max_seconds)
        t1 = time.perf_counter(); res, y, wins = pred.clip_windows(y)
        t2 = time.perf_counter(); ims, owner = pred.images(y, wins)
        t3 = time.perf_counter(); res = pred.clip_answer(res, wins, pred.window_probs(ims, owner, len(wins)))
        t4 = time.perf_counter()
        if i < a.warmup: continue
        for s, d in zip(stages + ['total'], [t1-t0, t2-t1, t3-t2, t4-t3, t4-t0]): times[s].append(d*1000)
        n_windows = len(wins)
    ref = pred.predict_file(clip)
    if (ref.get('label'), ref.get('probabilities')) != (res['label'], res['probabilities']):
        sys.exit(f"error: the timed stages answered {res} but predict_file {ref}: this script no longer follows predict_audio")
    settings = pred.model.settings
    out = dict(model=rel(pred.model_path), tiny_test_model=tiny, arch=settings.get('arch'),
               size=settings.get('size'), clip=str(clip) if a.clip else 'synthetic 1 s (0.8 s speech)',
               clip_seconds=round(sf.info(str(clip)).duration, 3), windows=n_windows, n=a.n, threads=a.threads,
               torch=torch.__version__, cpu=platform.processor() or platform.machine(),
               median_ms={s: round(float(np.median(v)), 2) for s, v in times.items()},
               p90_ms={s: round(float(np.percentile(v, 90)), 2) for s, v in times.items()},
               label=res['label'], probabilities=res['probabilities'])
    print(json.dumps(out, indent=1))
    if not tiny:
        from voicegender.core import atomic_write
        atomic_write(a.out, json.dumps(out, indent=1))

STAGES = {'0.0': 'stem', '0.1': 'stem', '0.2': 'stem', '0.3': 'stem', '0.4': 'layer1', '0.5': 'layer2', '0.6': 'layer3',
          '0.7': 'layer4'}   # fastai's body: Sequential(conv1, bn1, relu, maxpool, layer1-4); its head is '1'

def stage_of(name:str)->str: # a node name of the exported network ('/0/0.7/0.7.1/conv2/Conv') or a weight's ('0.7.1.conv2.weight')
    parts = name.strip('/').split('/')
    key = parts[1] if len(parts) > 1 else '.'.join(name.split('.')[:2])
    return STAGES.get(key, 'head')

def profile(model, n, threads, out='results/bench_latency_profile.json'):
    "Where the network's time goes at batch 1 and 64 (onnxruntime's node timings), by ResNet stage, with its weights."
    import collections, numpy as np, onnxruntime as ort
    from voicegender.core import read_model_file, shipped_model, atomic_write
    from voicegender.engine import cached_graph
    path = model or shipped_model(); settings, _ = read_model_file(path); g = str(cached_graph(path, settings))
    h, w = settings['size']
    from safetensors import safe_open
    weights = collections.Counter()   # MiB as float32, as the network runs
    with safe_open(str(path), 'np') as f:
        for k in f.keys(): weights[stage_of(k)] += float(np.prod(f.get_slice(k).get_shape()))*4/2**20
    res = dict(model=rel(path), size=[h, w], threads=threads, weights_mib={k: round(v, 1) for k,v in weights.items()})
    for bs in (1, 64):
        with tempfile.TemporaryDirectory() as tmp:
            so = ort.SessionOptions(); so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
            so.enable_profiling, so.profile_file_prefix, so.log_severity_level = True, f'{tmp}/ort', 3
            s = ort.InferenceSession(g, so, providers=['CPUExecutionProvider'])
            x = np.random.default_rng(0).random((bs, 3, h, w), dtype=np.float32)
            runs = max(5, n if bs == 1 else n//8)
            for _ in range(runs): s.run(['logits'], {'images': x})
            ev = json.load(open(s.end_profiling()))
        by = collections.Counter()
        for e in ev:
            if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time'): by[stage_of(e['name'][:-len('_kernel_time')])] += e['dur']
        res[f'batch{bs}_ms_per_image'] = {k: round(v/1000/runs/bs, 3) for k,v in sorted(by.items())} | {
            'total': round(sum(by.values())/1000/runs/bs, 3)}
    print(json.dumps(res, indent=1)); atomic_write(out, json.dumps(res, indent=1))


if __name__ == '__main__': sys.exit(main())
