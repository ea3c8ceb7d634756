#!/usr/bin/env python
"""The inference engine against inaSpeechSegmenter 0.6.8, in one run, on the same files and machine.

Measures, each in its own process (so start-up is counted and peak memory is that process's):
- **folder**: `voicegender predict --json DIR` on >= 200 clips of 2-5 s, start-up included, against the peer
  (`bench/peer.py` in `.venv-peer`, see `scripts/setup_peer.sh`) on the same clips; wall time, CPU time, peak memory.
- **answers**: the engine's labels against the reference path (PyTorch network, TorchScript Silero, one file at a
  time, `Predictor.predict_file`), and the largest difference in p(female).
- **long**: `voicegender segment` on a one-hour recording made by concatenating the clips (with pauses): real time per
  core (audio seconds / CPU seconds) and peak memory.
- **latency**: median time of `Predictor.predict_file` on a 1 s clip at steady state, one thread.
- **first answer**: `voicegender predict CLIP` in a new process, start-up included (median of 3), for a clip at
  16 kHz and the same clip at 44.1 kHz (a phone's or laptop's rate: it is resampled); the peer on the same clip.
- **serve**: `bench/serve_load.py` at 1, 4 and 16 clients with micro-batching, and with the reference settings
  (PyTorch, no batching) in the same run.

Clips: held-out speakers of the shipped model first (`results/heldout_speakers.csv`), then others, 2-5 s long, from
`results/crosscorpus_clips.csv` (written by `python bench/crosscorpus.py prepare`; needs ../shared/data). Writes
`results/bench_engine.json` atomically and prints the ratios as a markdown table.

    OMP_NUM_THREADS=1 python bench/engine.py                 # ~8 min on 2 cores (the peer takes most of it)
    python bench/engine.py --no-peer --no-serve --clips 60    # a quick look
"""
import argparse, functools, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV, PEER = ROOT/'.venv/bin', ROOT/'.venv-peer/bin/python'


def timed(cmd:list, out:Path|None=None, env:dict|None=None)->dict:
    "Run `cmd`; its wall time, CPU time (user + system) and peak memory (GNU time), and its exit status."
    stats = Path(tempfile.mktemp(suffix='.time'))
    t = time.perf_counter()
    with open(out or os.devnull, 'w') as f:
        rc = subprocess.run(['/usr/bin/time', '-o', str(stats), '-f', '%U %S %M'] + [str(c) for c in cmd], stdout=f,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    wall = time.perf_counter() - t
    user, sys_, kb = stats.read_text().split()[-3:]
    if rc.returncode not in (0, 1): print(rc.stderr[-3000:], file=sys.stderr)
    return dict(wall_s=round(wall, 2), cpu_s=round(float(user) + float(sys_), 2), peak_mb=round(int(kb)/1024, 1),
                rc=rc.returncode)


def pick_clips(n:int, lo:float=2., hi:float=5.)->list[Path]:
    "n clips of lo-hi seconds: the shipped model's held-out speakers first, then the others, in a fixed order."
    import pandas as pd, soundfile as sf
    clips = pd.read_csv(ROOT/'results/crosscorpus_clips.csv')
    held = set(pd.read_csv(ROOT/'results/heldout_speakers.csv').speaker)
    clips['path'] = [str((ROOT/p).resolve()) for p in clips.path]
    clips = clips[[Path(p).exists() for p in clips.path]]
    clips['seconds'] = [sf.info(p).duration for p in clips.path]
    clips = clips[clips.seconds.between(lo, hi)].assign(held=lambda d: ~d.speaker.isin(held))
    return [Path(p) for p in clips.sort_values(['held', 'path']).path[:n]]


def clip_folder(clips:list[Path], dest:Path)->Path:
    "A folder of links to the clips (names kept unique), so both tools read the same files."
    dest.mkdir(parents=True, exist_ok=True)
    for i,c in enumerate(clips): (dest/f"{i:04d}_{c.name}").symlink_to(c)
    return dest


def one_hour(clips:list[Path], dest:Path, seconds:float=3600.)->Path:
    "The clips one after another with 0.3-1.5 s pauses (and faint noise), repeated up to `seconds`, as 16-bit WAV."
    import numpy as np, soundfile as sf
    from voicegender.core import SR, load_audio
    rng = np.random.default_rng(0)
    with sf.SoundFile(dest, 'w', SR, 1, 'PCM_16') as f:
        done, k = 0, 0
        while done < seconds*SR:
            y = load_audio(clips[k % len(clips)], SR); k += 1
            gap = rng.normal(0, 0.002, int(rng.uniform(0.3, 1.5)*SR))
            piece = np.concatenate([y/max(np.abs(y).max(), 1e-6)*0.5, gap])[:int(seconds*SR) - done]
            f.write(piece.astype(np.float32)); done += len(piece)
    return dest


def answers(rows:list[dict])->dict:
    return {Path(r['path']).name: (r.get('label', 'error'), (r.get('probabilities') or {}).get('female')) for r in rows}


def reference(files:list[Path])->list[dict]:
    "The reference path: PyTorch network, TorchScript Silero, one file at a time."
    import voicegender.deploy as d, voicegender.speech as sp
    plain = sp.silero_model   # speech_segments looks it up in voicegender.speech
    sp.silero_model = functools.lru_cache(maxsize=None)(lambda sequence=None: plain(False))
    try:
        pred = d.Predictor(engine='torch', threads=1)
        assert not isinstance(sp.silero_model(), sp.SileroSequence), "the reference path must use Silero's TorchScript build"
        return [pred.predict_file(f) for f in files]
    finally: sp.silero_model = plain


def latency(clip:Path, n:int=100, warmup:int=10)->dict:
    "Median and 90th percentile of `predict_file` on one clip, one thread, after a warm-up."
    import numpy as np
    from voicegender.deploy import Predictor
    pred = Predictor(threads=1)
    for _ in range(warmup): pred.predict_file(clip)
    ts = []
    for _ in range(n):
        t = time.perf_counter(); pred.predict_file(clip); ts.append(1000*(time.perf_counter() - t))
    return dict(engine=pred.model.engine, threads=pred.threads, n=n, median_ms=round(float(np.median(ts)), 2),
                p90_ms=round(float(np.percentile(ts, 90)), 2))


def first_answer(clip:Path, tmp:Path, peer:bool, n:int=3)->dict:
    "Wall time of `voicegender predict CLIP` in a new process (median of n), at 16 kHz and at 44.1 kHz; the peer's once."
    import numpy as np, soundfile as sf, soxr
    y, sr = sf.read(clip, dtype='float32')
    hi = tmp/'first_44k.wav'; sf.write(hi, soxr.resample(y, sr, 44_100), 44_100, subtype='PCM_16')
    out = {}
    for name, f in (('16k', clip), ('44k', hi)):
        runs = [timed([VENV/'voicegender', 'predict', f]) for _ in range(n)]
        out[name] = dict(wall_s=float(np.median([r['wall_s'] for r in runs])), runs=[r['wall_s'] for r in runs],
                         peak_mb=max(r['peak_mb'] for r in runs), rc=max(r['rc'] for r in runs))
    if peer and PEER.exists():
        (tmp/'first.csv').write_text(f'path\n{clip}\n')
        out['peer'] = timed([PEER, ROOT/'bench/peer.py', tmp/'first.csv', '--out', tmp/'first_peer.csv'],
                            env={'OMP_NUM_THREADS': '', 'CUDA_VISIBLE_DEVICES': ''})
        out['speedup_wall'] = round(out['peer']['wall_s']/out['16k']['wall_s'], 1)
    return out | dict(clip=clip.name)


def serve(label:str, args:list, seconds:float, tmp:Path)->dict:
    out = tmp/f'serve_{label}.json'
    r = subprocess.run([VENV/'python', ROOT/'bench/serve_load.py', '--seconds', str(seconds), '--levels', '1', '4', '16',
                        '--out', out, '--server-args', ' '.join(args)], capture_output=True, text=True, cwd=ROOT)
    if r.returncode: print(r.stderr[-3000:], file=sys.stderr)
    d = json.loads(out.read_text())
    return dict(server_args=args, server_peak_mb=d.get('server_peak_mb'),
                levels={l['clients']: dict(rps=l['rps'], p50_ms=l['p50_ms'], p99_ms=l['p99_ms'], errors=l['errors'])
                        for l in d['levels']})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--clips', type=int, default=240, help="clips of 2-5 s in the folder run (default: 240)")
    p.add_argument('--hours', type=float, default=1.0, help="length of the long recording (default: 1)")
    p.add_argument('--serve-seconds', type=float, default=10, help="measured seconds per serve level (default: 10)")
    p.add_argument('--no-peer', action='store_true'); p.add_argument('--no-serve', action='store_true')
    p.add_argument('--out', default=str(ROOT/'results/bench_engine.json'))
    a = p.parse_args(argv)
    os.environ['OMP_NUM_THREADS'] = '1'
    tmp = Path(tempfile.mkdtemp(prefix='engine_'))
    res = dict(machine=dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                            loadavg_before=[round(x, 2) for x in os.getloadavg()]), date=time.strftime('%Y-%m-%d %H:%M:%S'))
    clips = pick_clips(a.clips)
    if len(clips) < a.clips: sys.exit(f"only {len(clips)} clips of 2-5 s found: run `python bench/crosscorpus.py prepare`")
    import soundfile as sf
    audio_s = sum(sf.info(c).duration for c in clips)
    folder = clip_folder(clips, tmp/'clips')
    res['folder'] = dict(clips=len(clips), audio_s=round(audio_s, 1))
    print(f"folder: {len(clips)} clips, {audio_s:.0f} s of audio", file=sys.stderr, flush=True)

    ours = timed([VENV/'voicegender', 'predict', '--json', folder], tmp/'ours.jsonl')
    rows = [json.loads(l) for l in (tmp/'ours.jsonl').read_text().splitlines()]
    res['folder']['ours'] = {**ours, 'files_per_s': round(len(rows)/ours['wall_s'], 2),
                             'realtime_per_core': round(audio_s/ours['cpu_s'], 1)}
    print(f"ours: {ours}", file=sys.stderr, flush=True)
    if not a.no_peer and PEER.exists():
        (tmp/'peer_clips.csv').write_text('path\n' + '\n'.join(str(f) for f in sorted(folder.iterdir())) + '\n')
        peer = timed([PEER, ROOT/'bench/peer.py', tmp/'peer_clips.csv', '--out', tmp/'peer.csv'],
                     env={'OMP_NUM_THREADS': '', 'CUDA_VISIBLE_DEVICES': ''})
        res['folder']['peer'] = {**peer, 'tool': 'inaSpeechSegmenter 0.6.8', 'files_per_s': round(len(clips)/peer['wall_s'], 2),
                                 'realtime_per_core': round(audio_s/peer['cpu_s'], 1)}
        res['folder']['speedup_wall'] = round(peer['wall_s']/ours['wall_s'], 1)
        res['folder']['speedup_cpu'] = round(peer['cpu_s']/ours['cpu_s'], 1)
        print(f"peer: {peer}", file=sys.stderr, flush=True)

    ref = answers(reference(sorted(folder.iterdir())))
    got = answers(rows)
    same = sum(got[k][0] == ref[k][0] for k in ref)
    dp = [abs(got[k][1] - ref[k][1]) for k in ref if got[k][1] is not None and ref[k][1] is not None]
    res['answers'] = dict(files=len(ref), same_label=same, max_abs_diff_p_female=round(max(dp, default=0.), 5),
                          reference="PyTorch network, TorchScript Silero, one file at a time")
    print(f"answers: {res['answers']}", file=sys.stderr, flush=True)

    long = one_hour(clips, tmp/'long.wav', a.hours*3600)
    seg = timed([VENV/'voicegender', 'segment', long, '--out', tmp/'segments', '--format', 'csv'])
    res['long'] = {**seg, 'audio_s': a.hours*3600, 'realtime_per_core': round(a.hours*3600/seg['cpu_s'], 1),
                   'realtime_wall': round(a.hours*3600/seg['wall_s'], 1), 'command': 'voicegender segment'}
    print(f"long: {res['long']}", file=sys.stderr, flush=True)

    one = tmp/'one_second.wav'
    import numpy as np
    from voicegender.core import SR, load_audio
    y = load_audio(clips[0], SR)
    sf.write(one, np.pad(y, (0, max(0, SR - len(y))))[:SR], SR, subtype='PCM_16')
    res['latency'] = {**latency(one), 'clip': f"1 s cut of {clips[0].name}"}
    print(f"latency: {res['latency']}", file=sys.stderr, flush=True)
    res['first_answer'] = first_answer(clips[0], tmp, not a.no_peer)
    print(f"first answer: {res['first_answer']}", file=sys.stderr, flush=True)

    if not a.no_serve:
        res['serve'] = dict(engine=serve('engine', [], a.serve_seconds, tmp),
                            reference=serve('reference', ['--engine', 'torch', '--batch', '1'],
                                            a.serve_seconds, tmp))
        e, r = res['serve']['engine']['levels'], res['serve']['reference']['levels']
        res['serve']['throughput_ratio_16'] = round(e[16]['rps']/r[16]['rps'], 1)
        print(f"serve: {res['serve']}", file=sys.stderr, flush=True)
    res['machine']['loadavg_after'] = [round(x, 2) for x in os.getloadavg()]

    from voicegender.core import atomic_write
    dest = atomic_write(a.out, json.dumps(res, indent=1))
    from voicegender.report import engine_table
    print(engine_table(res)); print(f"\nwrote {dest}")


if __name__ == '__main__': main()
