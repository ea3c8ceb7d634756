#!/usr/bin/env python
"""CPU cost of the wav2vec2 gender model's architecture next to our ResNet-34, per clip.

The real model (alefiury/wav2vec2-large-xlsr-53-gender-recognition-librispeech) cannot be downloaded here, so this
builds the same architecture with random weights: Wav2Vec2ForSequenceClassification with the XLSR-53 large config
(hidden 1024, 24 layers, 16 heads, intermediate 4096, the default 7-layer conv feature encoder with layer norm) on a
1 s clip at 16 kHz, and torchvision's resnet34(num_classes=2) on one 3x64x128 MFCC image. Random weights cost the same
time and memory as trained ones; NO accuracy is measured here.

Each model runs in its own subprocess so that its peak resident memory (resource.getrusage ru_maxrss) is its own; a
third subprocess that imports the same libraries and builds nothing gives the baseline to subtract. Latency is the
median of --runs forward passes (after --warmup) with torch.inference_mode, batch 1, on --threads CPU threads.

    .venv/bin/python bench/wav2vec2_cost.py --threads 1          # writes results/baselines_wav2vec2_cost.json
"""
import os, sys, json, time, argparse, subprocess, resource
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XLSR53_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                    feat_extract_norm='layer', do_stable_layer_norm=True, conv_bias=True, num_labels=2,
                    id2label={0: 'female', 1: 'male'}, label2id={'female': 0, 'male': 1})

def build(name):
    import torch
    if name == 'wav2vec2':
        from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification
        m = Wav2Vec2ForSequenceClassification(Wav2Vec2Config(**XLSR53_LARGE))
        x = {'input_values': torch.randn(1, 16_000), 'attention_mask': torch.ones(1, 16_000, dtype=torch.long)}
        return m.eval(), x
    if name == 'resnet34':
        import torchvision
        return torchvision.models.resnet34(num_classes=2).eval(), {'x': torch.randn(1, 3, 64, 128)}
    return None, None

def one(name, threads, runs, warmup):
    "Runs in the subprocess: import, build, time; print one JSON line."
    import torch, transformers, torchvision   # every subprocess imports the same, so the baseline is comparable
    torch.manual_seed(0); torch.set_num_threads(threads)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter(); model, x = build(name); build_s = time.perf_counter() - t0
    out = dict(model=name, threads=torch.get_num_threads(), rss_after_import_mb=rss0/1024)
    if model is not None:
        ts = []
        with torch.inference_mode():
            for i in range(warmup + runs):
                t = time.perf_counter(); y = model(**x); ts.append(time.perf_counter() - t)
        logits = y.logits if hasattr(y, 'logits') else y
        ts = sorted(ts[warmup:])
        out.update(params=sum(p.numel() for p in model.parameters()), build_seconds=build_s, output_shape=list(logits.shape),
                   median_ms=1000*ts[len(ts)//2], min_ms=1000*ts[0], max_ms=1000*ts[-1], runs=runs)
    out['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024   # Linux: KiB
    print(json.dumps(out))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--threads', type=int, default=1, help="torch CPU threads (1 unless the CPU is otherwise idle)")
    p.add_argument('--runs', type=int, default=20); p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--out', default=str(ROOT/'results/baselines_wav2vec2_cost.json'))
    p.add_argument('--csv', default=str(ROOT/'results/baselines.csv'), help="results table to add the cost row to ('' for none)")
    p.add_argument('--one', help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.one: return one(a.one, a.threads, a.runs, a.warmup)
    env = {**os.environ, 'OMP_NUM_THREADS': str(a.threads), 'MKL_NUM_THREADS': str(a.threads)}
    res = {}
    for name in ('none', 'resnet34', 'wav2vec2'):
        r = subprocess.run([sys.executable, __file__, '--one', name, '--threads', str(a.threads), '--runs', str(a.runs),
                            '--warmup', str(a.warmup)], capture_output=True, text=True, env=env, cwd=ROOT)
        if r.returncode: print(r.stderr, file=sys.stderr); return 1
        res[name] = json.loads(r.stdout.strip().splitlines()[-1])
        print(json.dumps(res[name]))
    base = res['none']['peak_rss_mb']
    for k in ('resnet34', 'wav2vec2'): res[k]['model_rss_mb'] = res[k]['peak_rss_mb'] - base
    w, rn = res['wav2vec2'], res['resnet34']
    res['ratio'] = dict(latency=w['median_ms']/rn['median_ms'], params=w['params']/rn['params'],
                        memory=w['model_rss_mb']/rn['model_rss_mb'])
    res['note'] = ("random weights, same architecture as alefiury/wav2vec2-large-xlsr-53-gender-recognition-librispeech; "
                   "its accuracy is not reported because its weights cannot be downloaded here")
    from voicegender.core import atomic_write
    out = atomic_write(a.out, json.dumps(res, indent=1))
    print(f"wav2vec2-large (1 s clip): {w['median_ms']:.0f} ms, {w['params']/1e6:.1f} M params, +{w['model_rss_mb']:.0f} MB | "
          f"ResNet-34 (3x64x128): {rn['median_ms']:.1f} ms, {rn['params']/1e6:.1f} M params, +{rn['model_rss_mb']:.0f} MB | "
          f"ratio: {res['ratio']['latency']:.0f}x time, {res['ratio']['params']:.0f}x params, {res['ratio']['memory']:.1f}x memory "
          f"({a.threads} thread{'s' if a.threads > 1 else ''}); wrote {out}")
    if a.csv:
        sys.path.insert(0, str(ROOT))
        from voicegender.baselines import update_results_row
        update_results_row(a.csv, dict(method='wav2vec2-large XLSR-53 gender (alefiury), cost only', params=w['params'],
            pretrained_weights_loaded='false', cpu_ms_per_clip=f"{w['median_ms']:.1f}",
            notes=f"accuracy NOT measured: the weights cannot be downloaded here; latency of the same architecture with random "
                  f"weights on a 1 s clip, {a.threads} thread(s), median of {a.runs}; peak RSS +{w['model_rss_mb']:.0f} MB over "
                  f"the bare imports; {res['ratio']['latency']:.0f}x the ResNet-34's time per clip (model only, "
                  f"{rn['median_ms']:.1f} ms, +{rn['model_rss_mb']:.0f} MB)"))

if __name__ == '__main__': sys.exit(main())
