"Serve: the HTTP API (answers, timings, bad uploads, limits), the OpenAPI schema under schemathesis, the live WebSocket."
import io, os, sys, json, time, socket, subprocess, threading, contextlib
from pathlib import Path
import numpy as np, soundfile as sf, pytest, httpx
pytest.importorskip('fastapi', reason="needs the serve extra: pip install 'voicegender[serve]'")
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from voicegender.core import SR, GENDERS
from voicegender.speech import synthetic_speech
from voicegender.train import tiny_learner
from voicegender.serve import (make_app, TimedPredictor, MAX_UPLOAD_BYTES, LIVE_WINDOW, LIVE_HOP, LIVE_MAX_MESSAGE,
                               cli_serve)

ROOT = Path(__file__).resolve().parents[1]
SPEECH_LABELS = {'female', 'male', 'uncertain'}


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp('serve')
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return tiny_learner(d)


@pytest.fixture(scope='module')
def pred(model): return TimedPredictor(model)


@pytest.fixture(scope='module')
def client(pred):
    with TestClient(make_app(pred)) as c: yield c


def sentence(seconds=1.0, f0=120, before=0.5, after=0.5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.zeros(int(before*SR)), synthetic_speech(seconds, f0, seed=seed), np.zeros(int(after*SR))])
    return (y + rng.normal(0, 0.003, len(y))).astype(np.float32)


def encode(y, sr=SR, format='WAV', subtype='PCM_16'):
    b = io.BytesIO(); sf.write(b, y, sr, format=format, subtype=subtype); return b.getvalue()


def post(client, data, name='clip.wav', mime='audio/wav'):
    return client.post('/predict', files={'file': (name, data, mime)})


# --- HTTP ---

def test_health_docs_and_schema(client, model):
    h = client.get('/health').json()
    assert h['status'] == 'ok' and h['model'] == str(model) and h['max_upload_bytes'] == MAX_UPLOAD_BYTES == 10*2**20
    assert h['live']['path'] == '/live' and h['live']['window_seconds'] == LIVE_WINDOW and h['live']['default_rate'] == SR
    docs = client.get('/docs')
    assert docs.status_code == 200 and 'swagger' in docs.text.lower()
    op = client.get('/openapi.json').json()['paths']['/predict']['post']
    assert 'multipart/form-data' in op['requestBody']['content']
    assert {'200', '400', '413', '415', '422'} <= set(op['responses'])
    page = client.get('/')
    assert page.status_code == 200 and page.headers['content-type'].startswith('text/html')
    for element in ('id="file"', 'id="drop"', 'id="record"', 'id="live"', 'id="answer"', 'id="live-answer"'):
        assert element in page.text


def test_predict_speech_gives_probabilities_and_timings(client, pred):
    y = sentence()
    r = post(client, encode(y))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out['filename'] == 'clip.wav' and out['label'] in SPEECH_LABELS and out['n_windows'] == 1
    assert abs(sum(out['probabilities'].values()) - 1) < 1e-3 and set(out['probabilities']) == set(GENDERS)
    assert abs(out['duration'] - 2.0) < 1e-3 and 0.8 < out['speech_seconds'] < 1.4
    t = out['timings_ms']
    assert all(t[k] > 0 for k in ('decode', 'speech', 'features', 'model'))
    assert t['decode'] + t['speech'] + t['features'] + t['model'] <= t['total'] + 0.05
    direct = pred.predict_audio(sf.read(io.BytesIO(encode(y)), dtype='float32')[0])
    assert (out['label'], out['probabilities']) == (direct['label'], direct['probabilities'])   # the CLI's answer


def test_any_rate_channels_and_format(client):
    y = sentence(seed=3)
    ref = post(client, encode(y)).json()
    stereo_flac = encode(np.stack([y, y], 1), format='FLAC')
    out = post(client, stereo_flac, 'clip.flac', 'audio/flac').json()
    assert out['label'] == ref['label'] and abs(out['probabilities']['male'] - ref['probabilities']['male']) < 1e-3
    import librosa
    out44 = post(client, encode(librosa.resample(y, orig_sr=SR, target_sr=44100), 44100)).json()
    assert out44['label'] in SPEECH_LABELS and abs(out44['probabilities']['male'] - ref['probabilities']['male']) < 0.1


def test_silence_and_noise_are_no_speech(client):
    for y in [np.zeros(SR, np.float32), np.random.default_rng(0).normal(0, 0.02, 2*SR).astype(np.float32)]:
        out = post(client, encode(y)).json()
        assert (out['label'], out['probabilities'], out['n_windows']) == ('no speech', None, 0)
        assert out['timings_ms']['model'] == 0


def nan_wav():
    y = sentence(); y[100] = np.nan
    return encode(y, subtype='FLOAT')


@pytest.mark.parametrize('name,data,code,says', [
    ('empty.wav', b'', 422, 'empty.wav: the uploaded file is empty (0 bytes)'),
    ('notes.txt', b'these are my notes, not audio', 415, 'notes.txt: not readable as audio'),
    ('fake.wav', b'RIFF' + os.urandom(2000), 415, 'fake.wav: not readable as audio'),
    ('cut.wav', encode(sentence())[:30], 415, 'cut.wav: not readable as audio'),
    ('zero.wav', encode(np.zeros(0, np.float32)), 422, 'zero.wav: contains no samples'),
    ('nan.wav', nan_wav(), 422, 'nan.wav: contains NaN'),
])
def test_bad_uploads_get_4xx_with_a_message(client, name, data, code, says):
    r = post(client, data, name)
    assert r.status_code == code and r.json()['detail'].startswith(says), (r.status_code, r.text)


def test_truncated_audio_is_scored_on_what_is_left(client):
    data = encode(sentence(2.0))
    r = post(client, data[:len(data)//2])             # a WAV cut in its data: libsndfile reads the samples that are there
    assert r.status_code == 200 and 1.0 < r.json()['duration'] < 1.6, r.text


def test_missing_or_misnamed_field_is_422(client):
    for kw in [dict(data={'name': 'x'}), dict(files={'audio': ('clip.wav', encode(sentence()), 'audio/wav')}),
               dict(json={'file': 'clip.wav'}), dict()]:
        r = client.post('/predict', **kw)
        assert r.status_code == 422 and "multipart form field 'file'" in r.json()['detail'], r.text


def test_too_large_is_413_before_it_is_read(client):
    big = b'RIFF' + b'\0'*MAX_UPLOAD_BYTES
    r = post(client, big, 'big.wav')
    assert r.status_code == 413 and r.json()['detail'] == 'upload too large: at most 10,485,760 bytes (10 MiB)'
    def chunks():                              # no Content-Length: the limit is counted as the bytes arrive
        for k in range(40): yield b'--b\r\n' + b'\0'*(2**20)
    r = client.post('/predict', content=chunks(), headers={'content-type': 'multipart/form-data; boundary=b'})
    assert r.status_code == 413 and 'upload too large' in r.json()['detail']
    r = post(client, b'\0'*(MAX_UPLOAD_BYTES - 2**16), 'just-under.wav')       # 10 MiB less 64 KiB: past the limit
    assert r.status_code == 415 and 'just-under.wav: not readable' in r.json()['detail']


def test_long_uploads_are_cut_with_a_warning(model):
    with TestClient(make_app(TimedPredictor(model, max_seconds=2.0))) as client:
        r = post(client, encode(sentence(4.0, before=0.2, after=0.8)), 'long.wav')
    out = r.json()
    assert r.status_code == 200 and out['duration'] == 2.0 and out['warnings'][0] == '5 s long: only the first 2 s were used'



def test_concurrent_requests_get_their_own_answers(client, pred):
    clips = [sentence(seed=s, f0=f0) for s, f0 in [(1, 110), (2, 210), (4, 130), (5, 230)]]
    expected = [pred.predict_audio(sf.read(io.BytesIO(encode(y)), dtype='float32')[0])['probabilities'] for y in clips]
    got = [None]*len(clips)
    def ask(i): got[i] = post(client, encode(clips[i]), f'{i}.wav').json()
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(clips))]
    for t in threads: t.start()
    for t in threads: t.join()
    assert [g['filename'] for g in got] == [f'{i}.wav' for i in range(len(clips))]
    assert [g['probabilities'] for g in got] == expected


# --- POST /segment: who speaks when ---

def two_speakers(seed=0):
    "0.5 s silence, 3 s of a low voice, 1 s pause, 3 s of a high voice, 0.5 s silence: 8 s."
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.zeros(SR//2), synthetic_speech(3.0, 110, seed=1), np.zeros(SR), synthetic_speech(3.0, 220, seed=2),
                        np.zeros(SR//2)])
    return (y + rng.normal(0, 0.003, len(y))).astype(np.float32)


def post_segment(client, data, name='talk.wav', mime='audio/wav'):
    return client.post('/segment', files={'file': (name, data, mime)})


def test_segment_turns_cover_the_file_and_totals_add_up(client, pred):
    r = post_segment(client, encode(two_speakers()))
    assert r.status_code == 200, r.text
    out = r.json()
    segs, t = out['segments'], out['totals']
    assert out['filename'] == 'talk.wav' and out['duration'] == 8.0 and out['n_windows'] > 0 and out['warnings'] == []
    assert segs[0]['start'] == 0 and segs[-1]['stop'] == out['duration']
    assert all(a['stop'] == b['start'] for a, b in zip(segs, segs[1:])) and all(s['stop'] > s['start'] for s in segs)
    labels = [s['label'] for s in segs]
    assert labels[0] == labels[-1] == 'no speech' and 'no speech' in labels[1:-1], segs      # the silences and the pause
    speaking = sum(s['stop'] - s['start'] for s in segs if s['label'] != 'no speech')
    assert 5.0 < speaking < 7.0, segs                                                         # 6 s of voice
    for lab, key in [('female', 'female_s'), ('male', 'male_s'), ('no speech', 'no_speech_s')]:
        assert t[key] == pytest.approx(sum(s['stop'] - s['start'] for s in segs if s['label'] == lab), abs=0.011)
    assert t['female_share'] == pytest.approx(t['female_s']/(t['female_s'] + t['male_s']), abs=1e-3)
    assert 0 <= t['uncertain_share'] <= 1 and out['threshold'] == pytest.approx(pred.threshold, abs=1e-4)
    for s in segs:
        assert (s['p_female'] is None) == (s['label'] == 'no speech') and not (s['label'] == 'no speech' and s['uncertain'])
        if s['p_female'] is not None: assert s['uncertain'] == (max(s['p_female'], 1 - s['p_female']) < pred.threshold)
    assert all(out['timings_ms'][k] > 0 for k in ('decode', 'segment', 'total'))
    from voicegender.segment import segment_audio                       # what `voicegender segment` says of the same audio
    direct = segment_audio(sf.read(io.BytesIO(encode(two_speakers())), dtype='float32')[0], pred)
    assert [(s['label'], s['start'], s['stop'], s['p_female']) for s in segs] == [tuple(s) for s in direct['segments']]
    assert t == direct['totals']


def test_segment_silence_has_no_turns_and_no_share(client):
    out = post_segment(client, encode(np.zeros(3*SR, np.float32)), 'quiet.wav').json()
    assert [(s['label'], s['start'], s['stop']) for s in out['segments']] == [('no speech', 0, 3.0)]
    assert out['totals'] == dict(female_s=0, male_s=0, no_speech_s=3.0, female_share=None, uncertain_share=None)


@pytest.mark.parametrize('name,data,code,says', [
    ('empty.wav', b'', 422, 'empty.wav: the uploaded file is empty (0 bytes)'),
    ('notes.txt', b'these are my notes, not audio', 415, 'notes.txt: not readable as audio'),
    ('cut.wav', encode(sentence())[:30], 415, 'cut.wav: not readable as audio'),
    ('nan.wav', nan_wav(), 422, 'nan.wav: contains NaN'),
])
def test_segment_bad_uploads_get_4xx_with_a_message(client, name, data, code, says):
    r = post_segment(client, data, name)
    assert r.status_code == code and r.json()['detail'].startswith(says), (r.status_code, r.text)


def test_segment_field_size_and_length_limits(client, pred):
    r = client.post('/segment', files={'audio': ('talk.wav', encode(sentence()), 'audio/wav')})
    assert r.status_code == 422 and "multipart form field 'file'" in r.json()['detail'] and '/segment' in r.json()['detail']
    r = post_segment(client, b'RIFF' + b'\0'*MAX_UPLOAD_BYTES, 'big.wav')
    assert r.status_code == 413 and r.json()['detail'].startswith('upload too large')
    with TestClient(make_app(pred, max_segment_seconds=5)) as small:
        assert small.get('/health').json()['max_segment_seconds'] == 5
        r = post_segment(small, encode(two_speakers()), 'long.wav')
        assert r.status_code == 413 and r.json()['detail'] == ("long.wav: 8 s of audio is too long: /segment takes at most "
                                                              "5 s (cut the file, or run `voicegender segment` on it)")
        assert post_segment(small, encode(sentence(3.0)), 'short.wav').status_code == 200       # 4 s: under the limit
        r = post(small, encode(two_speakers()), 'long.wav')                                      # /predict is not limited by it
        assert r.status_code == 200 and r.json()['duration'] == 8.0
    assert client.get('/health').json()['max_segment_seconds'] == 600


def test_segment_in_the_schema(client):
    spec = client.get('/openapi.json').json()
    op = spec['paths']['/segment']['post']
    assert 'multipart/form-data' in op['requestBody']['content']
    assert {'200', '413', '415', '422', '503'} <= set(op['responses'])
    seg = spec['components']['schemas']['Segment']['properties']
    assert set(seg) == {'label', 'start', 'stop', 'p_female', 'uncertain'}
    assert set(seg['label']['enum']) == {'female', 'male', 'no speech'}
    assert {'segments', 'totals', 'duration'} <= set(spec['components']['schemas']['Segmentation']['properties'])


def test_segment_is_guarded_like_predict(pred):
    from voicegender.serve import LOOPBACK_NAMES
    c = TestClient(make_app(pred, hosts=LOOPBACK_NAMES, token='s3cret'), base_url='http://127.0.0.1:8000')
    ok, data = {'Authorization': 'Bearer s3cret'}, encode(sentence())
    r = c.post('/segment', files={'file': ('a.wav', data)}, headers={**ok, 'Origin': 'https://evil.example'})
    assert r.status_code == 403 and 'https://evil.example' in r.json()['detail']
    r = c.post('/segment', files={'file': ('a.wav', data)})
    assert r.status_code == 401 and 'token' in r.json()['detail']
    r = c.post('/segment', files={'file': ('a.wav', data)}, headers={**ok, 'Origin': 'http://127.0.0.1:8000'})
    assert r.status_code == 200 and r.json()['filename'] == 'a.wav', r.text

def test_segment_busy_and_too_slow_get_503(pred):
    app = make_app(pred, segment_timeout=0.001)
    with TestClient(app) as client:
        app.state.segmenting = 2                                    # as if two files were being segmented
        r = post_segment(client, encode(two_speakers()), 'a.wav')
        assert r.status_code == 503 and 'a.wav: the server is busy' in r.json()['detail'] and r.headers['retry-after']
        app.state.segmenting = 0
        r = post_segment(client, encode(two_speakers()), 'b.wav')
        assert r.status_code == 503 and 'b.wav: not segmented within 0.001 s' in r.json()['detail'], r.text
        deadline = time.time() + 30                                  # the work stops at its next block, the slots free up
        while (app.state.queued or app.state.segmenting) and time.time() < deadline: time.sleep(0.05)
        assert (app.state.queued, app.state.segmenting) == (0, 0)


# --- the OpenAPI schema, property-based: no input makes the server fail ---

def test_openapi_schema_holds_and_no_server_errors(pred):
    schemathesis = pytest.importorskip('schemathesis')
    from hypothesis import given, settings, HealthCheck, strategies as st
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance
    schema = schemathesis.openapi.from_asgi('/openapi.json', make_app(pred))
    cases = st.one_of(*(schema.as_strategy(mode) for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)))
    seen = []

    @given(case=cases)
    @settings(max_examples=90, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        # no 5xx; status codes, content types and bodies as documented. Not `positive_data_acceptance`: the schema says
        # "binary", and random bytes are rightly refused as not audio (415) or empty (422).
        r = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        seen.append((case.method, case.path, r.status_code))
    check()
    assert {(m, p) for m, p, _ in seen} == {('GET', '/health'), ('POST', '/predict'), ('POST', '/segment')}
    for path in ('/predict', '/segment'):
        assert {c for m, p, c in seen if p == path} & {415, 422}, seen    # the error paths were exercised


# --- live ---

def send(ws, y, chunk=1600):
    for k in range(0, len(y), chunk): ws.send_bytes(np.asarray(y[k:k+chunk], '<f4').tobytes())


def collect(ws, until):
    "Answers up to the last one: within a hop of stream time `until` (s)."
    got = []
    while not got or got[-1]['end'] < until - LIVE_HOP - 1e-6: got.append(ws.receive_json())
    return got


def test_live_speech_then_silence(client, pred):
    y = sentence(1.0, before=0.5, after=0.5)
    with client.websocket_connect('/live') as ws:
        ready = ws.receive_json()
        assert ready['type'] == 'ready' and ready['rate'] == SR and ready['window'] == LIVE_WINDOW
        send(ws, y); talk = collect(ws, 2.0)
        send(ws, np.zeros(2*SR, np.float32)); quiet = collect(ws, 4.0)
    assert all(m['type'] == 'prediction' for m in talk + quiet)
    ends = [m['end'] for m in talk + quiet]
    assert ends == sorted(ends) and all(b - a >= LIVE_HOP - 1e-6 for a, b in zip(ends, ends[1:]))
    last = talk[-1]
    assert last['label'] in SPEECH_LABELS and last['probabilities'] is not None and last['window'] == LIVE_WINDOW
    n = round(last['end']*SR)                  # the answer is the Predictor's for the last 1.5 s of the stream
    direct = pred.predict_audio(y[n - int(LIVE_WINDOW*SR):n])
    assert (last['label'], last['probabilities']) == (direct['label'], direct['probabilities'])
    # the scorer answers for all the audio received when it starts, so an answer can end between hops (scoring was
    # busy when a message arrived); the last one is within a hop of the end of the stream
    assert (quiet[-1]['label'], quiet[-1]['probabilities']) == ('no speech', None) and quiet[-1]['end'] > 4.0 - LIVE_HOP - 1e-6


def test_live_silence_is_never_guessed(client):
    with client.websocket_connect('/live') as ws:
        ws.receive_json()
        noise = np.random.default_rng(0).normal(0, 0.01, 3*SR).astype(np.float32)
        send(ws, noise); got = collect(ws, 3.0)
    assert len(got) >= 1 and {m['label'] for m in got} == {'no speech'} and all(m['probabilities'] is None for m in got)


def test_live_other_rates_are_resampled(client):
    import librosa
    y = librosa.resample(sentence(1.0), orig_sr=SR, target_sr=48000)
    with client.websocket_connect('/live?rate=48000') as ws:
        assert ws.receive_json()['rate'] == 48000
        send(ws, y, 4800); got = collect(ws, 2.0 - 0.05)       # soxr holds back a few ms
    assert got[-1]['label'] in SPEECH_LABELS, got[-1]


@pytest.mark.parametrize('url,payload,code,says', [
    ('/live?rate=12', None, 1008, 'bad ?rate=12'),
    ('/live?rate=abc', None, 1008, 'bad ?rate=abc'),
    ('/live', b'\0\0\0', 1007, 'multiple of 4'),
    ('/live', np.array([0, np.inf], '<f4').tobytes(), 1007, 'finite'),
    ('/live', 'hello', 1003, 'binary messages'),
    ('/live', b'\0'*(LIVE_MAX_MESSAGE + 4), 1009, 'at most'),
])
def test_live_bad_input_gets_an_error_and_a_close_code(client, url, payload, code, says):
    with client.websocket_connect(url) as ws:
        if payload is not None:
            assert ws.receive_json()['type'] == 'ready'
            ws.send_text(payload) if isinstance(payload, str) else ws.send_bytes(payload)
        err = ws.receive_json()
        assert err['type'] == 'error' and says in err['detail'], err
        with pytest.raises(WebSocketDisconnect) as e: ws.receive_json()
    assert e.value.code == code


def test_live_keeps_working_for_other_clients_after_one_drops(client):
    with client.websocket_connect('/live') as ws:
        ws.receive_json(); send(ws, sentence(0.5)[:SR])           # leaves mid-stream
    with client.websocket_connect('/live') as ws:
        ws.receive_json(); send(ws, sentence(1.0)); got = collect(ws, 2.0)
    assert got[-1]['type'] == 'prediction'


# --- the command ---

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


class Planted:
    "A pickle that runs code when it is loaded: it creates `marker`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (open, (self.marker, 'w'))


def test_cli_serve_loads_only_weights_it_is_given(model, tmp_path, monkeypatch):
    import pickle, shutil, voicegender.model
    def serve(*args):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            rc = cli_serve([*args, '--port', str(free_port())])
        return rc, err.getvalue()
    marker = tmp_path/'PWNED'
    (tmp_path/'planted.pkl').write_bytes(pickle.dumps(Planted(marker)))
    rc, err = serve('--model', str(tmp_path/'planted.pkl'))
    assert rc == 2 and 'pickle' in err and 'serving on' not in err and not marker.exists(), err
    data = model.read_bytes()
    (tmp_path/'cut.safetensors').write_bytes(data[:len(data) - 100]); shutil.copy(model.with_suffix('.json'), tmp_path/'cut.json')
    rc, err = serve('--model', str(tmp_path/'cut.safetensors'))
    assert rc == 2 and 'do not match' in err, err
    monkeypatch.setattr(voicegender.core, 'SHIPPED_MODEL', tmp_path/'pkg/models/voicegender.safetensors')
    (tmp_path/'results/run').mkdir(parents=True)                                   # never picked: nobody named it
    for f in (model, model.with_suffix('.json')): shutil.copy(f, tmp_path/'results/run'/f.name)
    monkeypatch.chdir(tmp_path)
    rc, err = serve()
    assert rc == 2 and 'shipped model is missing' in err and '--model' in err, err


def test_cli_serve_runs_uvicorn(model, tmp_path):
    port = free_port()
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.Popen([sys.executable, '-c', 'import sys; from voicegender.cli import main; sys.exit(main())',
                             'serve', '--model', str(model), '--port', str(port), '--threads', '1',
                             '--log-level', 'warning'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        deadline, health = time.time() + 600, None
        while time.time() < deadline and proc.poll() is None:
            try: health = httpx.get(f'http://127.0.0.1:{port}/health', timeout=5).json(); break
            except httpx.HTTPError: time.sleep(0.5)
        assert health and health['model'] == str(model), proc.poll()
        r = httpx.post(f'http://127.0.0.1:{port}/predict', files={'file': ('a.wav', encode(sentence()), 'audio/wav')},
                       timeout=60)
        assert r.status_code == 200 and r.json()['label'] in SPEECH_LABELS
        r = httpx.post(f'http://127.0.0.1:{port}/predict', files={'file': ('a.wav', b'\0'*(MAX_UPLOAD_BYTES + 1))},
                       timeout=60)
        assert r.status_code == 413
        assert httpx.get(f'http://127.0.0.1:{port}/health', timeout=5).status_code == 200   # still up
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0]
    assert f'serving on http://127.0.0.1:{port}/' in out and 'model: Predictor(' in out, out
