"Deploy: export -> reload, folders, no speech, long clips, calibration and the predict command."
import io, os, json, pickle, hashlib, shutil, contextlib
from pathlib import Path
import numpy as np, soundfile as sf, pytest, torch
from voicegender.core import SR, GENDERS
from voicegender.speech import speech_segments, speech_windows, synthetic_speech
from voicegender.calibrate import (calibrate, load_calibration, fit_temperature, nll, softmax, expected_calibration_error,
                                   choose_threshold, CALIBRATION_FILE)
from voicegender.deploy import Predictor, cli_predict, find_audio
import voicegender.model
from voicegender.model import save_model, load_model
from voicegender.train import tiny_learner
from voicegender.data import speaker_splits, clip_table, save_splits


def quiet(fn, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return fn(*a, **k)


def run_cli(argv):
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        rc = cli_predict(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A tiny run folder as `voicegender train` leaves it: model.safetensors + model.json, config.json, the split table."
    d = tmp_path_factory.mktemp('run')
    quiet(tiny_learner, d)
    save_splits(speaker_splits(clip_table(d/'toy')[0], k=3, seed=0), d/'splits.csv')
    (d/'config.json').write_text(json.dumps(dict(fold=0, splits=str(d/'splits.csv'), image_root=str(d/'mfc'), size=[32, 64])))
    return d


def sentence(seconds, f0=120, before=1.0, after=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.zeros(int(before*SR)), synthetic_speech(seconds, f0, seed=seed), np.zeros(int(after*SR))])
    return (y + rng.normal(0, 0.003, len(y)) - 0.085).astype(np.float32)   # AZ-like DC offset


def test_export_reload_gives_identical_predictions(run, tmp_path):
    pred = Predictor(run/'model.safetensors', use_calibration=False)
    clips = [sentence(1.0), sentence(4.0, 220, seed=2), sentence(0.6, 100, seed=3)]
    for ext in ('.safetensors', '.json'): shutil.copy(run/f'model{ext}', tmp_path/f'copy{ext}')   # a model is these two files
    again = Predictor(tmp_path/'copy.safetensors', use_calibration=False)
    assert again.model_path == tmp_path/'copy.safetensors' and again.recipe == pred.recipe
    for y in clips:
        assert again.predict_audio(y, windows=True) == pred.predict_audio(y, windows=True)
    ims, _ = pred.images(clips[0], [(SR, 2*SR)])
    np.testing.assert_array_equal(again.model.logits(ims), pred.model.logits(ims))


def test_no_speech(run):
    pred = Predictor(run/'model.safetensors')
    t = np.arange(2*SR)/SR
    for y in [np.zeros(2*SR, np.float32), np.random.default_rng(0).normal(0, 0.02, 2*SR).astype(np.float32),
              (0.3*np.sin(2*np.pi*440*t)).astype(np.float32), np.full(2*SR, -0.085, np.float32)]:
        r = pred.predict_audio(y, windows=True)
        assert (r['label'], r['probabilities'], r['n_windows'], r['windows'] if 'windows' in r else []) == ('no speech', None, 0, [])


def test_short_speech_is_trimmed_to_one_centred_window(run):
    pred = Predictor(run/'model.safetensors')
    y = sentence(0.6, before=2.0, after=2.0)
    segs, wins = pred.speech(y)
    assert len(wins) == 1
    (s, e), mid = wins[0], (segs[0][0] + segs[-1][1])/2
    assert e - s == SR and abs((s + e)/2 - mid) <= 1 and s > 1.4*SR   # the leading 2 s of silence are not scored


def test_long_clip_is_scored_on_windows_over_all_its_speech(run):
    pred = Predictor(run/'model.safetensors')
    y = sentence(4.0, 220, before=1.5, after=1.5, seed=5)
    r = pred.predict_audio(y, windows=True)
    segs, wins = pred.speech(y)
    assert r['n_windows'] == len(wins) == len(r['windows']) >= 6
    starts = [w['start'] for w in r['windows']]
    assert all(abs(b - a - 0.5) < 1e-3 for a, b in zip(starts[:-2], starts[1:-1]))   # 0.5 s hop
    assert abs(r['windows'][0]['start'] - segs[0][0]/SR) < 1e-3 and abs(r['windows'][-1]['end'] - segs[-1][1]/SR) < 1e-3
    assert 1.3 < segs[0][0]/SR < 1.6 and 5.4 < segs[-1][1]/SR < 5.8          # speech is at 1.5-5.5 s
    mean = np.mean([[w['probabilities'][g] for g in GENDERS] for w in r['windows']], 0)
    np.testing.assert_allclose([r['probabilities'][g] for g in GENDERS], mean, atol=1e-3)   # the documented rule


def test_windows_drop_long_pauses():
    w = speech_windows([(0, SR), (6*SR, 7*SR)], 8*SR)
    assert all(s < SR or s >= 5*SR for s, _ in w) and w[0][0] == 0 and w[-1][1] == 7*SR


@pytest.mark.parametrize('scale', [3.0, 0.4])
def test_temperature_scaling_lowers_nll(scale):
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (3000, 2))
    y = np.array([rng.choice(2, p=p) for p in softmax(z)])
    T = fit_temperature(scale*z, y)
    assert abs(T - scale) < 0.15*scale                                      # over- (3) and under-confident (0.4)
    assert nll(scale*z, y, T) < nll(scale*z, y) - 0.02
    assert expected_calibration_error(softmax(scale*z, T), y) < expected_calibration_error(softmax(scale*z), y)
    assert (softmax(scale*z, T).argmax(1) == softmax(scale*z).argmax(1)).all()   # answers never change


def test_threshold_reaches_target_accuracy():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1, 2000)
    right = rng.uniform(size=2000) < conf                                  # calibrated: P(right) = confidence
    probs = np.stack([conf, 1 - conf], 1); y = np.where(right, 0, 1)
    r = choose_threshold(probs, y, target_accuracy=0.9, min_coverage=0.3)
    assert r['reached'] and r['accuracy'] >= 0.9 and 0.75 < r['threshold'] < 0.85
    lower = (conf >= r['threshold'] - 0.02)
    assert right[lower].mean() < 0.9 or lower.mean() == r['coverage']      # the smallest such threshold


def test_calibrate_writes_json_and_predict_uses_it(run, tmp_path):
    cal = calibrate(run, target_accuracy=0.8, min_coverage=0.5)
    saved = json.loads((run/CALIBRATION_FILE).read_text())
    assert saved == json.loads(json.dumps(cal))
    assert cal['valid']['nll_after'] <= cal['valid']['nll_before'] + 1e-9
    for k in ['ece_before', 'ece_after', 'coverage', 'n_clips']: assert k in cal['test']
    assert not [p for p in run.iterdir() if p.name.endswith('.tmp')]
    pred = Predictor(run/'model.safetensors')
    assert (pred.temperature, pred.threshold, pred.notes) == (cal['temperature'], cal['threshold'], [])
    # a copy of the same model (weights, settings, calibration.json) elsewhere is calibrated too
    for f in ('model.safetensors', 'model.json', CALIBRATION_FILE): shutil.copy(run/f, tmp_path/f)
    same = Predictor(tmp_path/'model.safetensors')
    assert (same.temperature, same.threshold, same.notes) == (cal['temperature'], cal['threshold'], [])
    # a calibration made for another model file is not applied
    m = load_model(run/'model.safetensors')
    with torch.no_grad(): m.net[1][-1].weight.mul_(1.01)                   # other weights, same settings
    save_model(m.net, tmp_path/'model.safetensors', m.settings)
    other = Predictor(tmp_path/'model.safetensors')
    assert other.temperature == 1.0 and 'another model' in other.notes[0]
    # a calibration inside the model's settings (model.json) comes first
    save_model(m.net, tmp_path/'inside.safetensors', {**m.settings, 'calibration': dict(temperature=2.5, threshold=0.7)})
    inside = Predictor(tmp_path/'inside.safetensors')
    assert (inside.temperature, inside.threshold, inside.notes) == (2.5, 0.7, [])
    assert Predictor(tmp_path/'inside.safetensors', use_calibration=False).temperature == 1.0


def test_uncertain_below_threshold(run):
    y = sentence(1.0)
    p = Predictor(run/'model.safetensors', threshold=0.5).predict_audio(y)
    assert p['label'] in GENDERS
    top = max(p['probabilities'].values())
    assert Predictor(run/'model.safetensors', threshold=top + 1e-3).predict_audio(y)['label'] == 'uncertain'


def test_predict_folders_table_and_json(run, tmp_path):
    d = tmp_path/'wavs'; (d/'nested/deeper').mkdir(parents=True); (d/'.hidden').mkdir()
    sf.write(d/'a.wav', sentence(1.0), SR, subtype='PCM_16')
    sf.write(d/'nested/B.FLAC', sentence(2.5, 220), SR)
    sf.write(d/'nested/deeper/c.ogg', np.zeros(SR, np.float32), SR, format='OGG')
    sf.write(d/'.hidden/skip.wav', sentence(1.0), SR)
    (d/'notes.txt').write_text('not audio, not listed')
    assert [p.relative_to(d).as_posix() for p in find_audio([d])] == ['a.wav', 'nested/B.FLAC', 'nested/deeper/c.ogg']
    rc, out, err = run_cli([str(d), '--model', str(run/'model.safetensors'), '--json', '--windows'])
    rows = {Path(r['path']).name: r for r in map(json.loads, out.splitlines())}
    assert rc == 0 and set(rows) == {'a.wav', 'B.FLAC', 'c.ogg'}
    assert rows['c.ogg']['label'] == 'no speech' and rows['c.ogg']['probabilities'] is None
    b = rows['B.FLAC']
    assert b['label'] in ('female', 'male', 'uncertain') and set(b['probabilities']) == set(GENDERS)
    assert len(b['windows']) == b['n_windows'] >= 3 and {'start', 'end', 'label', 'probabilities'} <= set(b['windows'][0])
    rc, out, _ = run_cli([str(d/'a.wav'), str(d/'nested'), '--model', str(run/'model.safetensors')])
    lines = out.splitlines()
    assert rc == 0 and lines[0].split()[:4] == ['file', 'answer', 'female', 'male'] and len(lines) == 4
    assert lines[3].split()[1:3] == ['no', 'speech']


class Payload:
    "A pickle that runs code when it is loaded: it creates `marker`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (open, (self.marker, 'w'))


def test_a_pickle_is_refused_and_never_loaded(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sf.write(tmp_path/'x.wav', sentence(1.0), SR)
    pickle.loads(pickle.dumps(Payload(tmp_path/'live')))
    assert (tmp_path/'live').exists()                                     # the payload works when unpickled
    marker = tmp_path/'PWNED'
    (tmp_path/'evil.pkl').write_bytes(pickle.dumps(Payload(marker)))
    rc, out, err = run_cli(['x.wav', '--model', 'evil.pkl'])
    assert rc == 2 and 'pickle' in err and out == '' and not marker.exists()
    with pytest.raises(ValueError, match='pickle'): Predictor(tmp_path/'evil.pkl')
    rc, _, err = run_cli(['x.wav', '--model', str(run/'model.pkl')])      # even fastai's own export beside the weights
    assert rc == 2 and 'pickle' in err and 'safetensors' in err
    # a pickle disguised as weights, with settings that vouch for its bytes: refused, not run
    data = pickle.dumps(Payload(marker)); (tmp_path/'evil.safetensors').write_bytes(data)
    settings = json.loads((run/'model.json').read_text())
    (tmp_path/'evil.json').write_text(json.dumps({**settings, 'weights_sha256': hashlib.sha256(data).hexdigest()}))
    rc, _, err = run_cli(['x.wav', '--model', 'evil.safetensors'])
    assert rc == 2 and 'weights do not fit' in err and not marker.exists()


def test_default_model_is_the_shipped_one_never_the_newest_under_results(run, tmp_path, monkeypatch):
    shipped = tmp_path/'pkg/models/voicegender.safetensors'
    monkeypatch.setattr(voicegender.core, 'SHIPPED_MODEL', shipped)
    monkeypatch.chdir(tmp_path)
    sf.write(tmp_path/'x.wav', sentence(1.0), SR)
    (tmp_path/'results/new/fold0').mkdir(parents=True)                    # models nobody named are not picked up
    for f in ('model.safetensors', 'model.json', 'model.pkl'): shutil.copy(run/f, tmp_path/'results/new/fold0'/f)
    rc, out, err = run_cli(['x.wav'])
    assert rc == 2 and out == '' and 'shipped model is missing' in err and str(shipped) in err and 'fold0' not in err
    with pytest.raises(FileNotFoundError, match='shipped model is missing'): Predictor()
    shipped.parent.mkdir(parents=True)
    shutil.copy(run/'model.safetensors', shipped)
    rc, out, err = run_cli(['x.wav'])                                     # the weights without their settings
    assert rc == 2 and 'shipped model is missing' in err
    shutil.copy(run/'model.json', shipped.with_suffix('.json'))
    rc, out, err = run_cli(['x.wav'])                                     # default model: the shipped one
    assert rc == 0 and str(shipped) in err and 'not calibrated' in err and len(out.splitlines()) == 2
    assert Predictor().model_path == shipped


def test_model_file_errors(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sf.write(tmp_path/'x.wav', sentence(1.0), SR)
    rc, _, err = run_cli(['x.wav', '--model', 'nope.safetensors'])
    assert rc == 2 and 'no such model file' in err
    shutil.copy(run/'model.safetensors', tmp_path/'alone.safetensors')    # the settings (alone.json) are missing
    rc, _, err = run_cli(['x.wav', '--model', 'alone.safetensors'])
    assert rc == 2 and 'alone.json: no such model file' in err
    data = (run/'model.safetensors').read_bytes()
    for name, bad in [('cut', data[:len(data)//2]), ('longer', data + b'\0'), ('empty', b'')]:
        (tmp_path/f'{name}.safetensors').write_bytes(bad); shutil.copy(run/'model.json', tmp_path/f'{name}.json')
        rc, out, err = run_cli(['x.wav', '--model', f'{name}.safetensors'])
        assert rc == 2 and out == '' and 'do not match' in err, (name, err)
    m = load_model(run/'model.safetensors')                                # weights of one model, settings of another
    with torch.no_grad(): m.net[1][-1].weight.add_(1)
    save_model(m.net, tmp_path/'other.safetensors', m.settings); shutil.copy(run/'model.json', tmp_path/'other.json')
    rc, _, err = run_cli(['x.wav', '--model', 'other.safetensors'])
    assert rc == 2 and 'do not match' in err
    (tmp_path/'junk.safetensors').write_bytes(b'not weights'); (tmp_path/'junk.json').write_text('{"format": "nope"}')
    rc, _, err = run_cli(['x.wav', '--model', 'junk.safetensors'])
    assert rc == 2 and 'not a voicegender model' in err
    (tmp_path/'junk.json').write_text('{not json')
    rc, _, err = run_cli(['x.wav', '--model', 'junk.safetensors'])
    assert rc == 2 and 'not valid JSON' in err
    rc, out, _ = run_cli(['no_such_folder', '--model', str(run/'model.safetensors')])
    assert rc == 1 and 'no such file' in out
    with contextlib.redirect_stdout(io.StringIO()) as h, pytest.raises(SystemExit): cli_predict(['--help'])
    text = ' '.join(h.getvalue().split())
    assert 'NAME.safetensors' in text and 'nothing in it is executed' in text and '.pkl' not in text


def test_energy_vad_option(run):
    pred = Predictor(run/'model.safetensors', vad='energy')
    assert pred.predict_audio(np.zeros(SR, np.float32))['label'] == 'no speech'
    r = pred.predict_audio(sentence(1.0))
    assert r['n_windows'] == 1 and r['label'] in ('female', 'male', 'uncertain')


def test_prepare_windows_are_the_windows_predict_scores():
    "`prepare --windows` makes exactly the images `predict` scores (the shipped model's recipe: level steadied, CMN, 40 x 80)."
    from voicegender.mfcc import window_images
    pred = Predictor(threads=1)
    for k, y in enumerate([sentence(2.4, 120, seed=1), 7*sentence(1.3, 230, seed=2), sentence(0.6, 180, seed=3)]):
        res, yc, wins = pred.clip_windows(y)
        ours = window_images(y, pred.recipe, pred.hop)
        assert len(ours) == len(wins) > 0, (k, len(ours), len(wins))
        assert all(np.array_equal(a, b) for a, b in zip(ours, pred.images(yc, wins)[0])), k
