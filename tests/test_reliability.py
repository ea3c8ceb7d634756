"""Issue #21: what a hostile but fair probe found. Each test failed on the code before its fix.

Modules are imported whole (not their new names), so that run against the old code each test fails on its own
assertion rather than the whole file on an import."""
import io, os, sys, json, time, errno, signal, warnings, socket, struct, asyncio, threading, contextlib, subprocess
from pathlib import Path
from unittest import mock
import numpy as np, pandas as pd, soundfile as sf, pytest, httpx
from voicegender import core, mfcc
from voicegender.core import SR, AudioError
from voicegender.speech import synthetic_speech
from voicegender.data import make_toy_corpus, clip_table

ROOT = Path(__file__).resolve().parents[1]


def mp3_bytes(y, sr=SR):
    b = io.BytesIO(); sf.write(b, y, sr, format='MP3', subtype='MPEG_LAYER_III'); return b.getvalue()


def loud_and_cut_mp3(d: Path):
    "A loud 3 s MP3, and the first 40 % (about 1.3 kB) of a silent 3 s MP3."
    t = np.arange(3*SR)/SR
    (d/'loud.mp3').write_bytes(mp3_bytes((0.9*np.sin(2*np.pi*200*t)).astype(np.float32)))
    quiet = mp3_bytes(np.zeros(3*SR, np.float32))
    (d/'cut.mp3').write_bytes(quiet[:int(0.4*len(quiet))])
    return d/'loud.mp3', d/'cut.mp3'


def wav_declaring(rate, n=1500):
    "A 3 kB WAV whose header declares `rate` Hz."
    b = io.BytesIO(); sf.write(b, np.zeros(n, np.int16), SR, format='WAV', subtype='PCM_16'); d = bytearray(b.getvalue())
    d[24:28] = struct.pack('<I', rate); d[28:32] = struct.pack('<I', 2*rate & 0xFFFFFFFF)
    return bytes(d)


# --- 1. a truncated MP3 is decoded from what it holds, with a warning ---

def test_truncated_mp3_is_not_scored_from_leftover_memory(tmp_path):
    loud, cut = loud_and_cut_mp3(tmp_path)
    core.load_audio(loud)                                      # leaves loud samples in the decoder's buffers
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        y = core.load_audio(cut)
    assert np.abs(y).max() < 1e-3, f"a silent file decoded with peak {np.abs(y).max():.3f}"
    assert 0.5 < len(y)/SR < 2.0, len(y)/SR                    # what it holds, not the 3 s its header declares
    assert [str(x.message) for x in w if 'truncated' in str(x.message)] == [
        f"{cut}: truncated: {len(y)/SR:.2f} s decoded of the 3.00 s its header declares; only the decoded part is used"]


# --- 5 and 10. only regular files are opened; each odd path says what it is ---

def test_fifo_device_and_symlink_loop_say_what_they_are(tmp_path):
    os.mkfifo(tmp_path/'pipe.wav')
    os.symlink(tmp_path/'b.wav', tmp_path/'a.wav'); os.symlink(tmp_path/'a.wav', tmp_path/'b.wav')
    for path, words in [(tmp_path/'pipe.wav', 'not a regular file (a FIFO)'),
                        ('/dev/zero', 'not a regular file (a character device)'),
                        (tmp_path/'a.wav', 'symlink loop')]:
        with pytest.raises(AudioError) as e: core.load_audio(path)
        assert str(e.value) == f"{path}: {e.value.problem}" and words in e.value.problem, (path, e.value)


def test_prepare_goes_past_a_fifo(tmp_path):
    toy = make_toy_corpus(tmp_path/'toy', n_speakers=2, n_clips=2)
    clips, _ = clip_table(toy)
    os.mkfifo(toy/'data/01/3_01_9.wav')                       # made after the table: prepare must not block on it
    clips = pd.concat([clips, pd.DataFrame([dict(path=str(toy/'data/01/3_01_9.wav'), speaker=1, gender='male')])])
    done = []
    t = threading.Thread(target=lambda: done.append(mfcc.prepare(clips, tmp_path/'mfc', tmp_path/'maps', n_workers=0,
                                                                 progress=False)), daemon=True)
    t.start(); t.join(60)
    assert done, "prepare blocked on a FIFO"
    r = done[0]
    assert r['images'] == len(clips) - 1 and len(r['errors']) == 1 and 'not a regular file (a FIFO)' in r['errors'][0], r


# --- 4. killing prepare's process kills its workers ---

PREPARE = """
import sys
from voicegender.data import clip_table
from voicegender.mfcc import prepare
clips, _ = clip_table(sys.argv[1])
prepare(clips, sys.argv[2], sys.argv[3], n_workers=2, progress=False, distort='mix')
"""

def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f: return f.read().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
    except FileNotFoundError: return False


def _children(pid):
    try: return [int(p) for p in Path(f'/proc/{pid}/task/{pid}/children').read_text().split()]
    except FileNotFoundError: return []


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason="reads /proc")
def test_killing_prepare_kills_its_workers(tmp_path):
    toy = make_toy_corpus(tmp_path/'toy', n_speakers=6, n_clips=60)
    out = tmp_path/'mfc'
    proc = subprocess.Popen([sys.executable, '-c', PREPARE, str(toy), str(out), str(tmp_path/'maps')],
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    workers = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            workers = _children(proc.pid)
            if len(workers) == 2 and len(list(out.glob('*/*.jpg'))) >= 4: break
            time.sleep(0.05)
        assert proc.poll() is None and len(workers) == 2, "prepare ended (or never started its workers) too soon"
        proc.send_signal(signal.SIGKILL); proc.wait()
        deadline = time.time() + 5
        while time.time() < deadline and any(map(_alive, workers)): time.sleep(0.1)
        survivors = [w for w in workers if _alive(w)]
        n = len(list(out.glob('*/*.jpg'))); time.sleep(1)
        assert not survivors, f"workers {survivors} outlived their parent by 5 s ({len(list(out.glob('*/*.jpg'))) - n} images in the last second)"
        clips, _ = clip_table(toy)                                   # a resume finishes, and cleans up after the dead
        r = mfcc.prepare(clips, out, tmp_path/'maps', n_workers=0, progress=False, distort='mix')
        assert r['images'] == len(clips) and not list(out.rglob('.*')), (r, list(out.rglob('.*')))
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError): os.kill(w, signal.SIGKILL)
        if proc.poll() is None: proc.kill()


# --- 8. a resume redoes broken images and removes stale temporary files ---

def test_resume_redoes_a_planted_empty_jpeg(tmp_path):
    clips, _ = clip_table(make_toy_corpus(tmp_path/'toy', n_speakers=2, n_clips=2))
    mfcc.prepare(clips, tmp_path/'mfc', tmp_path/'maps', n_workers=0, progress=False)
    imgs = sorted((tmp_path/'mfc').glob('*/*.jpg'))
    imgs[0].write_bytes(b'')                                   # planted
    imgs[1].write_bytes(imgs[1].read_bytes()[:100])            # cut short
    stale = imgs[0].parent/f'.{imgs[0].name}.999999999.tmp'; stale.write_bytes(b'half')
    r = mfcc.prepare(clips, tmp_path/'mfc', tmp_path/'maps', n_workers=0, progress=False)
    from PIL import Image
    for i in imgs: Image.open(i).load()                        # train's loader would have crashed on imgs[0]
    assert r['written'] == 2 and not stale.exists(), r


# --- 9. an output folder that cannot be written stops prepare before any work, by name ---

def test_unwritable_maps_stop_prepare_before_any_work(tmp_path):
    clips, _ = clip_table(make_toy_corpus(tmp_path/'toy', n_speakers=2, n_clips=2))
    (tmp_path/'maps').write_text('a file where the maps folder should be')
    with pytest.raises(ValueError, match='maps: cannot be the maps folder'):   # the CLI prints a ValueError as "error: ..."
        mfcc.prepare(clips, tmp_path/'mfc', tmp_path/'maps', n_workers=0, progress=False)
    assert not list(tmp_path.glob('mfc/*/*.jpg')), "images were made before the maps folder was checked"


def test_read_only_image_folder_is_named(tmp_path):
    clips, _ = clip_table(make_toy_corpus(tmp_path/'toy', n_speakers=2, n_clips=2))
    real = os.access
    def no_write(p, mode, **kw): return False if mode & os.W_OK and 'mfc' in str(p) else real(p, mode, **kw)
    with mock.patch('os.access', no_write), pytest.raises(ValueError, match='mfc: the image folder is not writable'):
        mfcc.prepare(clips, tmp_path/'mfc', tmp_path/'maps', n_workers=0, progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders (the mocked test covers the check)")
def test_read_only_image_folder_really(tmp_path):
    clips, _ = clip_table(make_toy_corpus(tmp_path/'toy', n_speakers=2, n_clips=2))
    (tmp_path/'mfc').mkdir(); os.chmod(tmp_path/'mfc', 0o500)
    try:
        with pytest.raises(ValueError, match='mfc'): mfcc.prepare(clips, tmp_path/'mfc', tmp_path/'maps', n_workers=0, progress=False)
    finally: os.chmod(tmp_path/'mfc', 0o700)


# --- the server: 1, 6, 7, 10 ---

serve = pytest.importorskip('voicegender.serve', reason="needs the serve extra: pip install 'voicegender[serve]'")
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect


class Stub(serve.TimedPredictor):
    "Stands in for a model (no training, no VAD to load): answers 'no speech' and keeps the samples it was given."
    def __init__(self, delay:float=0.):
        self.model_path, self.calibration, self.temperature, self.threshold = Path('stub.safetensors'), None, 1., 0.5
        self.vad, self.seconds, self.max_seconds, self.notes, self.delay, self.seen = 'energy', 1., 60., [], delay, []
    def predict_timed(self, y, sr=SR, windows=False):
        time.sleep(self.delay); self.seen.append(y)
        return (dict(label='no speech', probabilities=None, n_windows=0, speech_seconds=0., duration=round(len(y)/SR, 3),
                     warnings=[]), dict(speech=0., features=0., model=0., total=0.))
    def predict_audio(self, y, sr=SR, windows=False): return self.predict_timed(y)[0]


@pytest.fixture
def pred(): return Stub()


def wav(y, sr=SR):
    b = io.BytesIO(); sf.write(b, y, sr, format='WAV', subtype='PCM_16'); return b.getvalue()


def speech_wav(seconds=1.0):
    return wav(np.concatenate([np.zeros(SR//2), synthetic_speech(seconds, 120), np.zeros(SR//2)]).astype(np.float32))


def test_server_scores_a_truncated_mp3_from_what_it_holds(pred, tmp_path):
    loud, cut = loud_and_cut_mp3(tmp_path)
    client = TestClient(serve.make_app(pred))
    assert client.post('/predict', files={'file': ('loud.mp3', loud.read_bytes())}).status_code == 200
    r = client.post('/predict', files={'file': ('cut.mp3', cut.read_bytes())})
    out = r.json()
    assert r.status_code == 200 and np.abs(pred.seen[-1]).max() < 1e-3, "the model was given leftover memory"
    assert any(w.startswith('truncated') for w in out['warnings']) and out['duration'] < 2, out


@pytest.mark.parametrize('rate', [1, 999, 500_000, 0xFFFFFFFF])
def test_absurd_sample_rates_get_422_at_once(pred, rate):
    client = TestClient(serve.make_app(pred))
    t = time.perf_counter()
    r = client.post('/predict', files={'file': ('odd.wav', wav_declaring(rate))})
    assert time.perf_counter() - t < 0.5
    assert r.status_code == 422 and r.json()['detail'].startswith(f"odd.wav: sample rate {rate:,} Hz is outside"), r.text


def test_a_full_queue_gets_503_and_slow_work_is_cut_off():
    app = serve.make_app(Stub(delay=1.0), max_queue=1, work_timeout=0.3)
    with TestClient(app) as client:                                         # one event loop for all requests
        r = client.post('/predict', files={'file': ('a.wav', speech_wav())})
        assert r.status_code == 503 and 'a.wav: not scored within 0.3 s' in r.json()['detail'], r.text
        r = client.post('/predict', files={'file': ('b.wav', speech_wav())})   # a's thread still holds the only slot
        assert r.status_code == 503 and 'b.wav: the server is busy' in r.json()['detail'] and r.headers['retry-after'], r.text
        time.sleep(1.2)                                                     # a's thread ends: its slot is free again
        assert app.state.queued == 0


def test_cross_site_post_and_missing_token_are_refused(pred):
    app = serve.make_app(pred, hosts=serve.LOOPBACK_NAMES, token='s3cret')
    c = TestClient(app, base_url='http://127.0.0.1:8000')
    ok = {'Authorization': 'Bearer s3cret'}
    files = lambda: {'file': ('a.wav', speech_wav())}
    r = c.post('/predict', files=files(), headers={**ok, 'Origin': 'http://127.0.0.1:8000'})
    assert r.status_code == 200, r.text
    r = c.post('/predict', files=files(), headers={**ok, 'Origin': 'https://evil.example'})
    assert r.status_code == 403 and 'https://evil.example' in r.json()['detail']
    r = c.post('/predict', files=files(), headers={**ok, 'Host': 'evil.example:8000', 'Origin': 'http://evil.example:8000'})
    assert r.status_code == 403 and 'Host' in r.json()['detail']                     # DNS rebinding
    for h in [{}, {'Authorization': 'Bearer nope'}]:
        r = c.post('/predict', files=files(), headers=h)
        assert r.status_code == 401 and 'token' in r.json()['detail']
    assert c.get('/health').status_code == 401 and c.get('/health', headers=ok).json()['token_required'] is True
    assert c.get('/').status_code == 200 and 'Bearer' in c.get('/').text                # the page, and its token code


def test_cross_site_websocket_is_refused_and_the_token_is_needed(pred):
    c = TestClient(serve.make_app(pred, hosts=serve.LOOPBACK_NAMES, token='s3cret'))
    here = {'Host': '127.0.0.1:8000', 'Origin': 'http://127.0.0.1:8000'}
    with pytest.raises(WebSocketDisconnect) as e:
        with c.websocket_connect('/live?token=s3cret', headers={**here, 'Origin': 'https://evil.example'}) as ws: ws.receive_json()
    assert e.value.code == 1008 and 'https://evil.example' in e.value.reason
    with c.websocket_connect('/live', headers=here) as ws:
        err = ws.receive_json()
        assert err['type'] == 'error' and '?token=' in err['detail']
        with pytest.raises(WebSocketDisconnect) as e: ws.receive_json()
    assert e.value.code == 1008
    with c.websocket_connect('/live?token=s3cret', headers=here) as ws:
        assert ws.receive_json()['type'] == 'ready'


def test_a_long_close_reason_fits_a_close_frame(pred):
    c = TestClient(serve.make_app(pred))
    with c.websocket_connect('/live?rate=' + 'é'*200) as ws:
        assert ws.receive_json()['type'] == 'error'
        with pytest.raises(WebSocketDisconnect) as e: ws.receive_json()
    assert e.value.code == 1008 and 0 < len(e.value.reason.encode()) <= 123, e.value.reason


# --- with uvicorn on loopback: the body deadline and the Host check of `voicegender serve` ---

@contextlib.contextmanager
def running(app, **kw):
    import uvicorn
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=port, log_level='warning', **kw))
    t = threading.Thread(target=server.run, daemon=True); t.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline: time.sleep(0.02)
    try: yield '127.0.0.1', port
    finally: server.should_exit = True; t.join(10)


def test_a_trickling_upload_is_cut_off(pred):
    with running(serve.make_app(pred, upload_timeout=1.0)) as addr, socket.create_connection(addr) as s:
        s.sendall(f'POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{addr[1]}\r\nContent-Type: multipart/form-data; boundary=b\r\n'
                  'Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="slow.wav"\r\n\r\n'.encode())
        s.settimeout(0.3); t0 = time.time(); got = b''
        while time.time() - t0 < 10 and b'\r\n\r\n' not in got:
            with contextlib.suppress(OSError): s.sendall(b'x')        # a byte every 0.3 s
            with contextlib.suppress(socket.timeout): got += s.recv(65536)
        assert got.startswith(b'HTTP/1.1 408') and time.time() - t0 < 5, got[:200]
