#!/usr/bin/env python
"""Abuse cases against `voicegender serve` on loopback (issue #21): every case, what it should get, what it got.

Starts the server itself (the CLI, in its own process, on 127.0.0.1 and a free port) with a tiny model trained in a few
seconds on synthetic voices (`voicegender.train.tiny_learner`), a token and tight limits, then reruns the probe's
cases: oversized and odd uploads, odd sample rates, trickling clients, cross-site POST and WebSocket, a DNS-rebinding
Host, bad and missing tokens, 16 concurrent clients (with the server's memory before and after), and a close reason
too long for a close frame. Last, a planted pickle named with --model must be refused without being loaded.
Nothing leaves 127.0.0.1; the whole run is bounded (about a minute, at most 2).

    python bench/abuse.py                 # prints the table
    python bench/abuse.py --out           # and writes it to results/abuse.txt
    python bench/abuse.py --model results/run/model.safetensors   # a real model instead of the tiny one
"""
import argparse, asyncio, contextlib, io, json, os, socket, struct, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, soundfile as sf, httpx, psutil

ROOT = Path(__file__).resolve().parents[1]
HOST, TOKEN, UPLOAD_TIMEOUT, MAX_QUEUE = '127.0.0.1', 'bench-token', 3.0, 4
BUDGET = 110.   # seconds for the whole run


def free_port():
    with socket.socket() as s: s.bind((HOST, 0)); return s.getsockname()[1]


def wav(y, sr):
    b = io.BytesIO(); sf.write(b, y, sr, format='WAV', subtype='PCM_16'); return b.getvalue()


def speech_clip(seconds=1.5)->bytes:
    from voicegender.core import SR
    from voicegender.speech import synthetic_speech
    y = np.concatenate([np.zeros(SR//4), synthetic_speech(seconds - 0.5, 120), np.zeros(SR//4)])
    return wav((y + np.random.default_rng(0).normal(0, 0.003, len(y))).astype(np.float32), SR)


def wav_declaring(rate:int)->bytes:
    "3 kB of WAV whose header declares `rate` Hz (1 Hz: 1,500 samples are 25 minutes)."
    d = bytearray(wav(np.zeros(1500, np.int16), 16000))
    d[24:28] = struct.pack('<I', rate); d[28:32] = struct.pack('<I', 2*rate & 0xFFFFFFFF)
    return bytes(d)


def truncated_silent_mp3()->bytes:
    b = io.BytesIO(); sf.write(b, np.zeros(3*16000, np.float32), 16000, format='MP3', subtype='MPEG_LAYER_III')
    return b.getvalue()[:int(0.4*len(b.getvalue()))]


def loud_mp3()->bytes:
    t = np.arange(3*16000)/16000
    b = io.BytesIO(); sf.write(b, (0.9*np.sin(2*np.pi*200*t)).astype(np.float32), 16000, format='MP3', subtype='MPEG_LAYER_III')
    return b.getvalue()


class Planted:
    "A pickle that runs code when it is loaded: it writes `path`."
    def __init__(self, path:str): self.path = path
    def __reduce__(self): return (open, (self.path, 'w'))


def planted_pickle(d:Path)->tuple:
    "`voicegender serve --model planted.pkl`: must exit with an error that names the pickle, and run nothing in it."
    import pickle
    marker = d/'planted-ran'; (d/'planted.pkl').write_bytes(pickle.dumps(Planted(str(marker))))
    r = subprocess.run([sys.executable, '-c', 'import sys; from voicegender.cli import main; sys.exit(main())', 'serve',
                        '--model', str(d/'planted.pkl'), '--port', str(free_port())],
                       capture_output=True, text=True, timeout=120, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    return ('serve --model planted.pkl (a pickle that writes a file)', "exit 2 naming the pickle, nothing run",
            f"exit {r.returncode}, {'names the pickle' if 'pickle' in r.stderr else 'no pickle message'}, "
            f"{'file WRITTEN' if marker.exists() else 'nothing run'}",
            r.returncode == 2 and 'pickle' in r.stderr and not marker.exists())


class Bench:
    def __init__(self, base:str, pid:int):
        self.base, self.pid, self.rows = base, pid, []
        self.auth = {'Authorization': f'Bearer {TOKEN}'}
        self.http = httpx.Client(base_url=base, timeout=30)

    def row(self, case, expected, got, ok):
        self.rows.append((case, expected, got, bool(ok)))
        print(f"{'ok  ' if ok else 'FAIL'} {case}: {got}", file=sys.stderr, flush=True)

    def post(self, name, data, headers=None, **kw):
        return self.http.post('/predict', files={'file': (name, data)}, headers={**self.auth, **(headers or {})}, **kw)

    def rss(self)->float: return psutil.Process(self.pid).memory_info().rss/2**20

    # --- uploads ---
    def uploads(self):
        r = self.post('big.wav', b'RIFF' + b'\0'*(11*2**20))
        self.row('11 MiB upload (Content-Length)', '413', f"{r.status_code} {r.json()['detail'][:40]}", r.status_code == 413)
        def chunks():                                  # a well-formed part whose content never ends
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
            for _ in range(12): yield b'\0'*2**20
        r = self.http.post('/predict', content=chunks(), headers={**self.auth, 'content-type': 'multipart/form-data; boundary=b'})
        self.row('12 MiB chunked upload (no Content-Length)', '413', str(r.status_code), r.status_code == 413)
        for name, data, want in [('notes.txt', b'these are notes, not audio', 415), ('empty.wav', b'', 422),
                                 ('random.mp3', os.urandom(4000), 415), ('header-only.wav', speech_clip()[:44], 422)]:
            r = self.post(name, data)
            self.row(f'odd upload: {name}', str(want), f"{r.status_code} {r.json()['detail'][len(name)+2:][:45]}",
                     r.status_code == want and r.json()['detail'].startswith(name))
        self.post('loud.mp3', loud_mp3())
        r = self.post('cut.mp3', truncated_silent_mp3()); out = r.json()
        self.row('truncated silent MP3 after a loud one', '200, no speech, "truncated", no "clipped"',
                 f"{r.status_code} {out.get('label')}; {'; '.join(w[:30] for w in out.get('warnings', []))}",
                 r.status_code == 200 and out['label'] == 'no speech' and any(w.startswith('truncated') for w in out['warnings'])
                 and not any('clipped' in w for w in out['warnings']))

    def rates(self):
        for rate in (1, 999, 500_000, 0xFFFFFFFF):
            t = time.perf_counter(); r = self.post('odd.wav', wav_declaring(rate)); ms = 1000*(time.perf_counter() - t)
            self.row(f'WAV declaring {rate:,} Hz', '422 at once', f"{r.status_code} in {ms:.0f} ms",
                     r.status_code == 422 and 'sample rate' in r.json()['detail'] and ms < 1000)
        clip = speech_clip()
        async def flood():
            async with httpx.AsyncClient(base_url=self.base, timeout=30, headers=self.auth) as c:
                codes = []
                async def one_hz():                     # four clients, ten 1 Hz uploads each, back to back
                    for _ in range(10): codes.append((await c.post('/predict', files={'file': ('1hz.wav', wav_declaring(1))})).status_code)
                async def the_clip():                   # retried at once while the queue is full
                    await asyncio.sleep(0.05); t, busy = time.perf_counter(), 0
                    while (r := await c.post('/predict', files={'file': ('clip.wav', clip)})).status_code == 503 and busy < 50:
                        busy += 1; await asyncio.sleep(0.05)
                    return r.status_code, time.perf_counter() - t, busy
                *_, res = await asyncio.gather(*[one_hz() for _ in range(4)], the_clip())
                return res, codes
        (code, took, busy), codes = asyncio.run(flood())
        self.row('1.5 s clip beside 4 clients sending 1 Hz WAVs', '200 within 2 s',
                 f"{code} in {took:.2f} s ({busy} busy retries; 1 Hz: { {k: codes.count(k) for k in set(codes)} })",
                 code == 200 and took < 2)

    # --- slow clients ---
    def trickle(self, n=50):
        port = int(self.base.rsplit(':', 1)[1])
        head = (f'POST /predict HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n'
                'Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n'
                '--b\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\n\r\n').encode()
        socks = []
        for _ in range(n):
            s = socket.create_connection((HOST, port)); s.sendall(head); s.setblocking(False); socks.append([s, b''])
        t0 = time.time()
        t = time.perf_counter(); r = self.post('clip.wav', speech_clip()); during = time.perf_counter() - t
        while time.time() - t0 < UPLOAD_TIMEOUT + 10 and any(b'\r\n\r\n' not in g for _, g in socks):
            for sg in socks:
                with contextlib.suppress(OSError): sg[0].send(b'x')          # a byte a second each
                with contextlib.suppress(BlockingIOError, OSError): sg[1] += sg[0].recv(4096)
            time.sleep(1)
        took = time.time() - t0
        codes = [g.split(b' ', 2)[1].decode() if g.startswith(b'HTTP/') else 'open' for _, g in socks]
        for s, _ in socks: s.close()
        self.row(f'{n} uploads trickling a byte a second', f'all 408 within {UPLOAD_TIMEOUT:g} s (+ 2 s)',
                 f"{ {c: codes.count(c) for c in set(codes)} } after {took:.1f} s", set(codes) == {'408'} and took < UPLOAD_TIMEOUT + 3)
        self.row('a clip while they trickle', '200', f"{r.status_code} in {during:.2f} s", r.status_code == 200)

    # --- who may call ---
    def access(self):
        port = int(self.base.rsplit(':', 1)[1]); own = f'http://{HOST}:{port}'
        for case, headers, want in [('same-origin POST (the page)', {'Origin': own}, 200),
                                    ('cross-site POST', {'Origin': 'https://evil.example'}, 403),
                                    ('Origin: null (sandboxed page)', {'Origin': 'null'}, 403),
                                    ('DNS-rebound Host', {'Host': f'rebound.example:{port}', 'Origin': f'http://rebound.example:{port}'}, 403),
                                    ('missing token', {'Authorization': ''}, 401),
                                    ('wrong token', {'Authorization': 'Bearer guess'}, 401)]:
            r = self.post('clip.wav', speech_clip(), headers)
            self.row(case, str(want), f"{r.status_code} {r.json().get('detail', r.json().get('label'))[:50]}", r.status_code == want)
        r = self.http.get('/health')
        self.row('GET /health without token', '401', str(r.status_code), r.status_code == 401)
        r = self.http.get('/')
        self.row('GET / (the page) without token', '200', str(r.status_code), r.status_code == 200)
        from websockets.sync.client import connect
        from websockets.exceptions import InvalidStatus, ConnectionClosed
        ws_url = f'ws://{HOST}:{port}/live'
        def ws_case(case, want, url, origin):
            try:
                with connect(url, origin=origin, open_timeout=10, close_timeout=5) as ws:
                    msgs = []
                    try:
                        while True: msgs.append(json.loads(ws.recv(timeout=5)))
                    except ConnectionClosed as e: got = f"{msgs[0]['type'] if msgs else '-'}, close {e.rcvd.code if e.rcvd else 'none (1006)'}"
                    except TimeoutError: got = f"{msgs[0]['type'] if msgs else '-'}, open"
            except InvalidStatus as e: got = f"handshake {e.response.status_code}"
            self.row(case, want, got, got == want)
        ws_case('cross-site WebSocket', 'handshake 403', f'{ws_url}?token={TOKEN}', 'https://evil.example')
        ws_case('WebSocket without token', 'error, close 1008', ws_url, own)
        ws_case('WebSocket with token', 'ready, open', f'{ws_url}?token={TOKEN}', own)
        ws_case('close reason over 123 bytes (?rate=é x 200)', 'error, close 1008', f'{ws_url}?token={TOKEN}&rate=' + 'é'*200, own)

    # --- load ---
    def concurrency(self, clients=16, each=3):
        before = self.rss()
        clip = speech_clip()
        async def run():
            async with httpx.AsyncClient(base_url=self.base, timeout=60, headers=self.auth,
                                         limits=httpx.Limits(max_connections=clients)) as c:
                async def client(i):
                    out = []
                    for k in range(each):
                        t = time.perf_counter(); r = await c.post('/predict', files={'file': (f'{i}-{k}.wav', clip)})
                        out.append((r.status_code, time.perf_counter() - t, r.headers.get('retry-after')))
                    return out
                return [x for xs in await asyncio.gather(*[client(i) for i in range(clients)]) for x in xs]
        t = time.perf_counter(); res = asyncio.run(run()); wall = time.perf_counter() - t
        codes = {c: sum(1 for x in res if x[0] == c) for c in sorted({x[0] for x in res})}
        ok = set(codes) <= {200, 503} and codes.get(200, 0) > 0 and all(x[2] for x in res if x[0] == 503)
        slow = max(x[1] for x in res if x[0] == 200)
        self.row(f'{clients} clients x {each} clips (max queue {MAX_QUEUE})', '200 or 503 busy (Retry-After), nothing else',
                 f"{codes} in {wall:.1f} s; slowest 200: {slow:.2f} s", ok)
        r = self.http.get('/health', headers=self.auth)
        after = self.rss()
        self.row('server RSS before / after the load', 'grows < 200 MiB, still healthy',
                 f"{before:.0f} / {after:.0f} MiB; health {r.status_code}", after - before < 200 and r.status_code == 200)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', nargs='?', const=str(ROOT/'results/abuse.txt'), default=None,
                   help="also write the table here (default with no value: results/abuse.txt)")
    p.add_argument('--model', help="NAME.safetensors with NAME.json beside it (default: a tiny model trained here in "
                                   "seconds); weights only, a .pkl is refused")
    a = p.parse_args(argv)
    t_start = time.time()
    from voicegender.train import tiny_learner
    with tempfile.TemporaryDirectory(prefix='vg-abuse-') as d:
        model = a.model
        if model is None:
            print("training a tiny model ...", file=sys.stderr, flush=True)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): model = tiny_learner(Path(d))
        port = free_port()
        log = open(Path(d)/'server.log', 'w')
        cmd = [sys.executable, '-c', 'import sys; from voicegender.cli import main; sys.exit(main())', 'serve',
               '--model', str(model), '--host', HOST, '--port', str(port), '--threads', '1', '--log-level', 'warning',
               '--token', TOKEN, '--upload-timeout', str(UPLOAD_TIMEOUT), '--max-queue', str(MAX_QUEUE),
               '--work-timeout', '20', '--vad', 'energy']
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, 'OMP_NUM_THREADS': '1'})
        try:
            base = f'http://{HOST}:{port}'
            while True:
                if server.poll() is not None or time.time() - t_start > 60:
                    log.flush(); sys.exit("the server did not start:\n" + (Path(d)/'server.log').read_text())
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(base + '/health', headers={'Authorization': f'Bearer {TOKEN}'}, timeout=2).status_code == 200: break
                time.sleep(0.3)
            b = Bench(base, server.pid)
            for part in (b.uploads, b.rates, b.access, b.trickle, b.concurrency):
                if time.time() - t_start > BUDGET: b.row(part.__name__, 'run', 'skipped: out of time', False); continue
                part()
            b.row(*planted_pickle(Path(d)))
            b.row('server process', 'still running', 'running' if server.poll() is None else f'exited {server.returncode}',
                  server.poll() is None)
        finally:
            server.terminate()
            try: server.wait(10)
            except subprocess.TimeoutExpired: server.kill()
    w = [max(len(str(r[i])) for r in b.rows + [('case', 'expected', 'got')]) for i in range(3)]
    lines = [f"voicegender serve abuse cases, 127.0.0.1, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{time.time() - t_start:.0f} s; limits: --upload-timeout {UPLOAD_TIMEOUT:g} --max-queue {MAX_QUEUE} "
             f"--work-timeout 20 --token (set)", '',
             f"| {'case':<{w[0]}} | {'expected':<{w[1]}} | {'got':<{w[2]}} | ok |", f"|{'-'*(w[0]+2)}|{'-'*(w[1]+2)}|{'-'*(w[2]+2)}|----|"]
    lines += [f"| {c:<{w[0]}} | {e:<{w[1]}} | {g:<{w[2]}} | {'yes' if ok else 'NO'} |" for c, e, g, ok in b.rows]
    n_bad = sum(not r[3] for r in b.rows)
    lines += ['', f"{len(b.rows) - n_bad} of {len(b.rows)} cases as expected"]
    text = '\n'.join(lines) + '\n'
    print(text)
    if a.out:
        from voicegender.core import atomic_write
        atomic_write(a.out, text); print(f"written to {a.out}", file=sys.stderr)
    return 1 if n_bad else 0


if __name__ == '__main__': sys.exit(main())
