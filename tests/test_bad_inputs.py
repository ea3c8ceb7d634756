"Every kind of bad input gets its own clear error (or warning), and a batch of files goes on past it."
import os, io, json, contextlib
from pathlib import Path
import numpy as np, soundfile as sf, pytest
from voicegender.core import SR, load_audio, AudioError
from voicegender.deploy import Predictor, cli_predict
from voicegender.speech import synthetic_speech
from voicegender.train import tiny_learner

ANSWERS = {'female', 'male', 'uncertain', 'no speech'}


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return tiny_learner(tmp_path_factory.mktemp('tiny'))


@pytest.fixture(scope='module')
def pred(model): return Predictor(model)


def speech(seconds=1.0, f0=120, sr=SR):
    y = synthetic_speech(seconds, f0, sr)
    pad = np.zeros(int(0.3*sr), np.float32)
    return np.concatenate([pad, y, pad]) + np.random.default_rng(0).normal(0, 0.002, len(y) + 2*len(pad)).astype(np.float32)


def good_files(d: Path) -> dict:
    "Readable inputs in every supported format, rate and channel layout: all must be classified."
    y = speech()
    sf.write(d/'plain.wav', y, SR, subtype='PCM_16')
    sf.write(d/'stereo44k.flac', np.stack([speech(sr=44100), speech(sr=44100)], 1), 44100, format='FLAC')
    sf.write(d/'vorbis.ogg', speech(sr=22050), 22050, format='OGG', subtype='VORBIS')
    sf.write(d/'mpeg.mp3', speech(sr=24000), 24000, format='MP3', subtype='MPEG_LAYER_III')
    sf.write(d/'narrow8k.wav', speech(sr=8000), 8000, subtype='PCM_16')
    sf.write(d/'six48k.wav', np.tile(speech(sr=48000)[:, None], (1, 6)), 48000, subtype='PCM_24')
    sf.write(d/'float.wav', speech(), SR, subtype='FLOAT')
    return {p.name: p for p in d.iterdir()}


def bad_files(d: Path) -> dict:
    "name -> (path, the words its error must contain)."
    d.mkdir(exist_ok=True)
    y = speech()
    sf.write(d/'_ref.wav', y, SR, subtype='PCM_16'); ref = (d/'_ref.wav').read_bytes(); (d/'_ref.wav').unlink()
    (d/'empty.wav').touch()
    sf.write(d/'zero_length.wav', np.zeros(0, np.float32), SR)
    (d/'truncated_header.wav').write_bytes(ref[:30])
    (d/'not_audio.wav').write_text('this is a text file, not audio\n' * 20)
    (d/'picture.mp3').write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(range(256)) * 8)
    (d/'corrupt.mp3').write_bytes(np.random.default_rng(0).integers(0, 256, 6000, dtype=np.uint8).tobytes())
    sf.write(d/'nan.wav', np.where(np.arange(len(y)) % 1000 == 0, np.nan, y).astype(np.float32), SR, subtype='FLOAT')
    sf.write(d/'inf.wav', np.where(np.arange(len(y)) == 5, np.inf, y).astype(np.float32), SR, subtype='FLOAT')
    (d/'a_folder.wav').mkdir()
    return {'empty.wav': 'empty file', 'zero_length.wav': 'zero-length', 'truncated_header.wav': 'not readable',
            'not_audio.wav': 'not readable', 'picture.mp3': 'not readable', 'corrupt.mp3': 'not readable',
            'nan.wav': 'NaN', 'inf.wav': 'infinite', 'a_folder.wav': 'directory', 'missing.wav': 'no such file'}


def test_good_formats_are_read_and_classified(tmp_path, pred):
    for name, path in good_files(tmp_path).items():
        y = load_audio(path)
        assert abs(len(y)/SR - 1.6) < 0.06, (name, len(y)/SR)                # any rate -> 16 kHz, any channels -> mono
        r = pred.predict_file(path)
        assert 'error' not in r, (name, r)
        assert r['label'] in ('female', 'male', 'uncertain') and r['n_windows'] >= 1, (name, r)
        assert abs(sum(r['probabilities'].values()) - 1) < 1e-3


def test_each_bad_file_gets_its_error(tmp_path, pred):
    expected = bad_files(tmp_path)
    for name, words in expected.items():
        r = pred.predict_file(tmp_path/name)
        assert set(r) == {'path', 'error'}, (name, r)
        assert words in r['error'], (name, r['error'])
        assert r['path'] == str(tmp_path/name)
        if name != 'a_folder.wav':
            with pytest.raises(AudioError, match=name.replace('.', r'\.')): load_audio(tmp_path/name)   # names the file


def test_a_batch_goes_on_past_bad_files(tmp_path, model):
    (tmp_path/'good').mkdir()
    good = good_files(tmp_path/'good')
    expected = bad_files(tmp_path/'bad')
    (tmp_path/'empty_folder').mkdir()
    args = [str(tmp_path/'good'), str(tmp_path/'bad'), str(tmp_path/'bad/missing.wav'), str(tmp_path/'empty_folder'),
            '--model', str(model), '--json']
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
        rc = cli_predict(args)
    rows = [json.loads(l) for l in out.getvalue().splitlines()]
    by = {Path(r['path']).name: r for r in rows}
    assert rc == 1                                                             # some files failed...
    assert set(good) <= set(by) and all(by[n]['label'] in ANSWERS for n in good)   # ...the others were classified
    for name, words in expected.items():
        if name == 'a_folder.wav': continue                                   # an empty folder inside a walked folder is not a file
        assert words in by[name]['error'], (name, by[name])
    assert 'no audio files' in by['empty_folder']['error']
    assert len(rows) == len(good) + len(expected) - 1 + 1


def test_clipped_audio_is_classified_with_a_warning(tmp_path, pred):
    sf.write(tmp_path/'clipped.wav', np.clip(speech()*6, -1, 1), SR, subtype='PCM_16')
    r = pred.predict_file(tmp_path/'clipped.wav')
    assert r['label'] in ('female', 'male', 'uncertain') and r['warnings'] and 'clipped' in r['warnings'][0]
    sf.write(tmp_path/'clean.wav', speech(), SR, subtype='PCM_16')
    assert pred.predict_file(tmp_path/'clean.wav')['warnings'] == []


def test_very_long_file_is_capped(tmp_path, pred):
    n = 70*SR                                                                  # 70 s: only the first 60 s are read
    y = np.random.default_rng(0).normal(0, 0.003, n).astype(np.float32)
    y[SR:3*SR] += synthetic_speech(2.0, 120)
    sf.write(tmp_path/'long.wav', y, SR, subtype='PCM_16')
    assert len(load_audio(tmp_path/'long.wav', max_seconds=60)) == 60*SR
    r = pred.predict_file(tmp_path/'long.wav')
    assert r['duration'] == 60.0 and 'only the first 60 s' in r['warnings'][0]
    assert r['label'] in ('female', 'male', 'uncertain') and 2 <= r['n_windows'] <= 4


def test_too_short_or_silent_is_no_speech(tmp_path, pred):
    sf.write(tmp_path/'tiny.wav', np.full(10, 0.1, np.float32), SR)
    sf.write(tmp_path/'silence.wav', np.zeros(SR, np.float32), SR)
    sf.write(tmp_path/'dc.wav', np.full(SR, -0.085, np.float32), SR)            # a DC offset alone is not speech
    for name in ['tiny.wav', 'silence.wav', 'dc.wav']:
        r = pred.predict_file(tmp_path/name)
        assert (r['label'], r['probabilities']) == ('no speech', None), (name, r)


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, 'geteuid') else True, reason="root can read any file")
def test_unreadable_file(tmp_path, pred):
    sf.write(tmp_path/'locked.wav', speech(), SR); os.chmod(tmp_path/'locked.wav', 0)
    assert 'permission denied' in pred.predict_file(tmp_path/'locked.wav')['error']
