#!/usr/bin/env python
"""End-to-end latency of one prediction: a 1 s clip from disk to probabilities.

Stages, each timed on every run, are the Predictor's own steps in the order `predict_audio` takes them: decode
(`load_audio`), vad (`Predictor.clip_windows`: level, Silero speech detection, the windows), features (`Predictor.images`),
model (`Predictor.window_probs` and `clip_answer`: the network, the calibrated softmax, the clip's answer). The answer is
checked against `Predictor.predict_file`'s. Prints one JSON object with the median and 90th percentile of each stage (ms).

    OMP_NUM_THREADS=1 python bench/latency.py --threads 1 --n 50                 # the model shipped in the package
    python bench/latency.py --model results/run/model.safetensors --clip my_wavs/x.wav
Without the shipped model (and no --model) it falls back to the tiny test model (say so in any number you report).
"""
import argparse, json, os, sys, tempfile, time, platform
from pathlib import Path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model', help="NAME.safetensors with NAME.json beside it (default: the model shipped in the package, "
                                   "else the tiny test model); weights only, a .pkl is refused")
    p.add_argument('--clip', help="audio file (default: a 1 s synthetic sentence written to a temporary WAV)")
    p.add_argument('--n', type=int, default=50, help="timed runs (default: 50)")
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--threads', type=int, default=1, help="torch threads (default: 1)")
    p.add_argument('--out', default='results/bench_latency.json', help="where the numbers go (not written for the tiny model)")
    a = p.parse_args(argv)
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
    out = dict(model=str(pred.model_path), tiny_test_model=tiny, arch=settings.get('arch'),
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


if __name__ == '__main__': sys.exit(main())
