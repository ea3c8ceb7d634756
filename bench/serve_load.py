#!/usr/bin/env python
"""Load test of `voicegender serve` on loopback: requests per second and latency of POST /predict with a 1 s clip.

Starts the server in its own process (the CLI, as a user would), then for each level of concurrency runs that many
clients (httpx, asyncio), each sending its next request as soon as the previous answer arrives, for `--seconds`.
Every answer must be a 200 with a label; the server must still answer /health at the end. Writes
results/bench_serve.json (atomically) and prints a markdown table.

    OMP_NUM_THREADS=1 python bench/serve_load.py --seconds 20 --levels 1 4 16     # the model shipped in the package
    python bench/serve_load.py --model results/run/model.safetensors --threads 2
Without the shipped model (and no --model) it uses an untrained ResNet-34 of the production size (same compute; say so
when reporting).
"""
import argparse, asyncio, io, json, os, platform, socket, subprocess, sys, tempfile, time, contextlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def stand_in_model(dest:Path)->Path:
    "An untrained ResNet-34 with the production input size, saved weights-only (no training needed: same compute)."
    from voicegender.core import GENDERS
    from voicegender.model import gender_net, save_model
    from voicegender.train import image_recipe
    return save_model(gender_net('resnet34', len(GENDERS)), dest/'stand_in.safetensors',
                      dict(arch='resnet34', size=[64, 128], vocab=list(GENDERS), recipe=image_recipe(ROOT/'mfc_dataset'),
                           stand_in=True))


def server_peak_mb(pid:int)->float|None:
    "The server process's peak resident memory (Linux: VmHWM), in MB."
    try: return round(int(next(l for l in open(f'/proc/{pid}/status') if l.startswith('VmHWM')).split()[1])/1024, 1)
    except (OSError, StopIteration): return None


def one_second_clip()->bytes:
    import numpy as np, soundfile as sf
    from voicegender.core import SR
    from voicegender.speech import synthetic_speech
    y = np.concatenate([np.zeros(SR//10), synthetic_speech(0.8, 120), np.zeros(SR//10)])
    y = (y + np.random.default_rng(0).normal(0, 0.003, len(y))).astype(np.float32)
    b = io.BytesIO(); sf.write(b, y, SR, format='WAV', subtype='PCM_16'); return b.getvalue()


async def run_level(url:str, clip:bytes, clients:int, seconds:float, warmup:float)->dict:
    import httpx, numpy as np
    lat, server_ms, errors, labels = [], [], [], {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        start = time.perf_counter(); measure_from = start + warmup; stop = measure_from + seconds
        async def client(k):
            while time.perf_counter() < stop:
                t = time.perf_counter()
                try:
                    r = await http.post('/predict', files={'file': (f'clip{k}.wav', clip, 'audio/wav')})
                    ok = r.status_code == 200 and 'label' in r.json()
                except Exception as e: ok, r = False, e
                done = time.perf_counter()
                if t < measure_from: continue                     # warm-up requests are not counted
                if not ok: errors.append(str(getattr(r, 'status_code', r))); continue
                body = r.json(); lat.append(done - t); server_ms.append(body['timings_ms']['total'])
                labels[body['label']] = labels.get(body['label'], 0) + 1
        t0 = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        wall = time.perf_counter() - max(t0, measure_from)
    ms = np.array(lat)*1000
    q = lambda a, p: round(float(np.percentile(a, p)), 1) if len(a) else None
    return dict(clients=clients, seconds=round(wall, 2), requests=len(lat), errors=len(errors), error_examples=errors[:5],
                rps=round(len(lat)/wall, 2), p50_ms=q(ms, 50), p90_ms=q(ms, 90), p99_ms=q(ms, 99),
                max_ms=round(float(ms.max()), 1) if len(ms) else None, server_total_p50_ms=q(np.array(server_ms), 50),
                labels=labels)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model', help="NAME.safetensors with NAME.json beside it (default: the model shipped in the package, "
                                   "else an untrained stand-in); weights only, a .pkl is refused")
    p.add_argument('--levels', type=int, nargs='+', default=[1, 4, 16], help="concurrent clients (default: 1 4 16)")
    p.add_argument('--seconds', type=float, default=20, help="measured seconds per level (default: 20)")
    p.add_argument('--warmup', type=float, default=2, help="unmeasured seconds at the start of each level")
    p.add_argument('--threads', type=int, default=1, help="torch threads in the server (default: 1)")
    p.add_argument('--startup', type=float, default=600, help="seconds to wait for the server to start")
    p.add_argument('--out', default=str(ROOT/'results/bench_serve.json'))
    p.add_argument('--note', default='', help="stored with the results (e.g. 'machine shared with training')")
    p.add_argument('--server-args', default='', help="more options for `voicegender serve`, in one string "
                                                     "(e.g. '--engine torch --batch 1')")
    a = p.parse_args(argv)
    import httpx
    from voicegender.model import shipped_model
    tmp = Path(tempfile.mkdtemp())
    model, stand_in = a.model, False
    if model is None:
        try: model = shipped_model()
        except FileNotFoundError:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                model = stand_in_model(tmp)
            stand_in = True
    clip = one_second_clip()
    port = free_port(); url = f'http://127.0.0.1:{port}'
    env = {**os.environ, 'OMP_NUM_THREADS': str(a.threads)}
    log = open(tmp/'server.log', 'w')
    server = subprocess.Popen([sys.executable, '-c', 'import sys; from voicegender.cli import main; sys.exit(main())',
                               'serve', '--model', str(model), '--port', str(port), '--threads', str(a.threads),
                               '--log-level', 'warning', *a.server_args.split()], stdout=log, stderr=subprocess.STDOUT, env=env)
    load_before = os.getloadavg()
    try:
        deadline = time.time() + a.startup
        while True:
            if server.poll() is not None: sys.exit("the server stopped:\n" + (tmp/'server.log').read_text())
            try: httpx.get(url + '/health', timeout=5).raise_for_status(); break
            except httpx.HTTPError:
                if time.time() > deadline: sys.exit("the server did not start in time")
                time.sleep(0.5)
        levels = []
        for n in a.levels:
            r = asyncio.run(run_level(url, clip, n, a.seconds, a.warmup))
            levels.append(r)
            print(f"{n:>3} clients: {r['requests']} requests, {r['errors']} errors, {r['rps']} req/s, "
                  f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms", file=sys.stderr, flush=True)
        still_up = httpx.get(url + '/health', timeout=10).status_code == 200
        peak_mb = server_peak_mb(server.pid)
    finally:
        server.terminate(); server.wait(60); log.close()
    out = dict(model=str(model), stand_in=stand_in, clip='1 s WAV (16 kHz, 16-bit): 0.8 s of synthetic speech',
               server=f"voicegender serve --threads {a.threads} (uvicorn, 1 worker), loopback; clients: httpx in one "
                      "asyncio process on the same machine",
               server_args=a.server_args, server_peak_mb=peak_mb, seconds_per_level=a.seconds, warmup=a.warmup, server_still_up=still_up,
               all_answered=all(l['errors'] == 0 for l in levels), levels=levels,
               machine=dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                            loadavg_before=[round(x, 2) for x in load_before],
                            loadavg_after=[round(x, 2) for x in os.getloadavg()]),
               note=a.note, date=time.strftime('%Y-%m-%d %H:%M:%S'))
    from voicegender.core import atomic_write
    dest = atomic_write(a.out, json.dumps(out, indent=1))
    print(f"| clients | requests | errors | req/s | p50 (ms) | p99 (ms) | server p50 (ms) |\n|---:|---:|---:|---:|---:|---:|---:|")
    for l in levels:
        print(f"| {l['clients']} | {l['requests']} | {l['errors']} | {l['rps']} | {l['p50_ms']} | {l['p99_ms']} | "
              f"{l['server_total_p50_ms']} |")
    print(f"\nmodel: {model}{' (untrained stand-in ResNet-34, same compute)' if stand_in else ''}; server still up: "
          f"{still_up}; load average before/after: {out['machine']['loadavg_before']} / {out['machine']['loadavg_after']}")
    print(f"wrote {dest}")
    return 0 if still_up and out['all_answered'] else 1


if __name__ == '__main__':
    sys.exit(main())
