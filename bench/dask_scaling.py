"""Throughput of `predict` on a Dask LocalCluster: 1 and 2 worker processes against the single-process loop, and the
per-file overhead the scheduler adds.

    OMP_NUM_THREADS=1 python bench/dask_scaling.py [--n 200] [--workers 1 2] [--model M.safetensors]

Clips: the first --n clips (sorted by path) of the AudioMNIST_AZ speakers held out from the shipped model's training
(results/heldout_speakers.csv), from ../shared/data/audiomnist_az; where that is absent, --n synthetic 1.5 s voices
written to a temporary folder. The model: the one shipped in the package (default).

Each way runs once after a warm-up (imports and the model load done on every worker, on other files), timed over
the same clips, every result written as in a real job (one JSON a file, then the table):

- single process: `Predictor.predict_file` in a loop, one PyTorch thread;
- Dask, N workers: `cluster_predict` on a `LocalCluster` of N processes, one thread each.

Scaling ratio: files/s with 2 workers / files/s with 1. Scheduler overhead per file: the 1-worker time per file minus
the single-process time per file; and, alone, the round trip of an empty task (`noop_ms`). The machine's cores bound
the ratio (2 cores here: 2 workers is the ceiling, and the client and scheduler share them). Writes
results/bench_dask.json.
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent/'shared/data' if (ROOT.parent/'shared/data').exists() else Path('/work/shared/data')


def heldout_clips(n:int)->list[Path]:
    "The first n clips of the held-out AudioMNIST_AZ speakers, or [] when the corpus or the list is not here."
    hs, az = ROOT/'results/heldout_speakers.csv', SHARED/'audiomnist_az/data'
    if not (hs.exists() and az.exists()): return []
    spk = pd.read_csv(hs)
    ids = sorted(s.split(':')[1] for s in spk.speaker[(spk.corpus == 'audiomnist_az')])
    return sorted(f for i in ids for f in (az/i).glob('*.wav'))[:n]


def synthetic_clips(n:int, folder:Path)->list[Path]:
    from voicegender.speech import synthetic_speech
    out = []
    for i in range(n):
        f = folder/f'syn{i:04d}.wav'
        sf.write(f, synthetic_speech(1.5, 100 + (i*37) % 160, seed=i), 16_000); out.append(f)
    return out


def noop(x): return x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--n', type=int, default=200, help="clips timed (default: 200)")
    ap.add_argument('--warm', type=int, default=6, help="warm-up clips, not timed (default: 6)")
    ap.add_argument('--workers', type=int, nargs='+', default=[1, 2], help="cluster sizes (default: 1 2)")
    ap.add_argument('--model', help="default: the shipped model")
    ap.add_argument('--out', default=str(ROOT/'results/bench_dask.json'))
    a = ap.parse_args()
    import torch; torch.set_num_threads(1)
    from voicegender.deploy import Predictor
    from voicegender.distributed import cluster_predict, local_client
    from voicegender.core import atomic_write
    tmp = Path(tempfile.mkdtemp(prefix='bench_dask_'))
    files = heldout_clips(a.n + a.warm)
    source = 'audiomnist_az held-out speakers'
    if len(files) < a.n + a.warm:
        (tmp/'clips').mkdir(); files = synthetic_clips(a.n + a.warm, tmp/'clips'); source = 'synthetic 1.5 s voices'
    warm, files = files[:a.warm], files[a.warm:]
    secs = float(sum(sf.info(str(f)).duration for f in files))
    print(f"{len(files)} clips ({source}, {secs/len(files):.2f} s on average); {os.cpu_count()} cores", flush=True)

    pred = Predictor(a.model)
    for f in warm: pred.predict_file(f)
    t0 = time.perf_counter()
    for f in files:
        r = pred.predict_file(f); atomic_write(tmp/'single'/(Path(f).stem + '.json'), json.dumps(r))
    single = time.perf_counter() - t0
    rows = dict(single=dict(seconds=round(single, 3), files_per_s=round(len(files)/single, 2)))
    print(f"single process: {len(files)/single:.1f} files/s", flush=True)

    for n in a.workers:
        with local_client(n) as client:     # what --workers N starts
            cluster_predict(client, warm, tmp/f'warm{n}', a.model, force=True)   # imports and the model, on every worker
            client.wait_for_workers(n)
            loaded = client.run(lambda: __import__('voicegender.distributed').distributed.worker_predictor.cache_info().misses)
            t0 = time.perf_counter()
            for _ in range(200): client.submit(noop, 1, pure=False).result()
            noop_ms = (time.perf_counter() - t0)/200*1000
            t0 = time.perf_counter()
            res = cluster_predict(client, files, tmp/f'dask{n}', a.model, force=True)
            t = time.perf_counter() - t0
        assert len(res) == len(files) and not any('error' in r for r in res), [r for r in res if 'error' in r][:3]
        rows[f'dask_{n}'] = dict(workers=n, seconds=round(t, 3), files_per_s=round(len(files)/t, 2),
                                 noop_ms=round(noop_ms, 2), model_loaded_on=sum(v > 0 for v in loaded.values()))
        print(f"dask, {n} worker{'s'*(n > 1)}: {len(files)/t:.1f} files/s (an empty task's round trip: {noop_ms:.1f} ms)",
              flush=True)

    out = dict(n_files=len(files), clips=source, mean_clip_seconds=round(secs/len(files), 3), cores=os.cpu_count(),
               model=str(pred.model_path.name), command='OMP_NUM_THREADS=1 python bench/dask_scaling.py', **rows)
    if 'dask_1' in rows:
        out['overhead_ms_per_file'] = round((rows['dask_1']['seconds'] - single)/len(files)*1000, 2)
        print(f"scheduler overhead: {out['overhead_ms_per_file']:.1f} ms a file "
              f"({single/len(files)*1000:.1f} ms a file single-process)")
    if 'dask_1' in rows and 'dask_2' in rows:
        out['scaling_2_over_1'] = round(rows['dask_2']['files_per_s']/rows['dask_1']['files_per_s'], 3)
        print(f"scaling, 2 workers / 1 worker: {out['scaling_2_over_1']:.2f}x")
    atomic_write(a.out, json.dumps(out, indent=1) + '\n')
    print(f"wrote {a.out}")


if __name__ == '__main__': main()
