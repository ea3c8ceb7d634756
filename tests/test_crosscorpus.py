"The multi-corpus path end to end on tiny synthetic corpora, and answers that ignore the recording's level."
import io, json, contextlib
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf, pytest
from voicegender.core import SR
from voicegender.cli import main
from voicegender.data import make_toy_corpus, MANIFEST

def quiet(fn, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        r = fn(*a, **k)
    return r, out.getvalue(), err.getvalue()

def manifest_corpus(dest:Path, n:int=4, seed:int=5)->Path:
    "A toy corpus in the manifest layout (Ogg/Opus clips, ages, one child), as speechocean762 and BAVED come."
    toy = make_toy_corpus(dest/'src', n_speakers=n, n_clips=3, seed=seed)
    rows = []
    for wav in sorted((toy/'data').glob('*/*.wav')):
        spk = int(wav.parent.name); out = dest/'audio'/f's{spk}'/(wav.stem + '.ogg')
        out.parent.mkdir(parents=True, exist_ok=True)
        y, sr = sf.read(wav); sf.write(out, y, sr, format='OGG', subtype='OPUS')
        rows.append(dict(path=str(out.relative_to(dest)), speaker=f's{spk}', gender='female' if spk % 2 == 0 else 'male',
                         age=9 if spk == 1 else 30))
    pd.DataFrame(rows).to_csv(dest/MANIFEST, index=False)
    return dest

def test_prepare_split_and_train_on_two_corpora(tmp_path):
    a = make_toy_corpus(tmp_path/'az_like', n_speakers=6, n_clips=3)
    b = manifest_corpus(tmp_path/'manifest_like')
    args = ['--data', str(a), '--data', str(b)]
    rc, out, err = quiet(main, ['prepare', *args, '--out', str(tmp_path/'img'), '--maps', str(tmp_path/'maps'),
                                '--results', str(tmp_path/'res'), '--level', '--workers', '0'])
    assert rc == 0, err
    assert 'manifest_like: 12 clips, 4 speakers (2 F / 2 M), 1 children' in err       # the ingest report covers each corpus
    names = sorted(p.name for p in (tmp_path/'img').glob('*/*.jpg'))
    assert len(names) == 6*3 + 4*3 and any(n.startswith('manifest_like__') for n in names)   # Opus decoded, names namespaced
    assert json.loads((tmp_path/'img/recipe.json').read_text())['level'] is True
    clips = pd.read_csv(tmp_path/'res/clips.csv')
    assert set(clips.corpus) == {'az_like', 'manifest_like'} and clips.speaker.str.contains(':').all()
    rc, out, err = quiet(main, ['split', *args, '--loco', '--out', str(tmp_path/'loco.csv')])
    assert rc == 0, err
    sp = pd.read_csv(tmp_path/'loco.csv')
    assert sorted(sp.heldout.unique()) == ['az_like', 'manifest_like']
    assert not sp[(sp.role != 'test') & (sp.corpus == sp.heldout)].size                 # a held-out corpus is never trained on
    from voicegender.crosscorpus import clip_images, loco_fold
    from voicegender.data import corpus_table
    from voicegender.train import TrainConfig
    r, _, _ = quiet(loco_fold, tmp_path/'run', clip_images(corpus_table([a, b])[0], tmp_path/'img'), tmp_path/'loco.csv', 1,
                    TrainConfig(pretrained=False, arch='resnet18', epochs=1, bs=8, size=(24, 48)), progress=False)
    assert r['heldout'] == ['manifest_like'] and set(r['scores']['manifest_like']) == {'adults', 'children'}
    assert r['scores']['manifest_like']['children']['n_clips'] == 3
    assert (tmp_path/'run/model.safetensors').exists() and not (tmp_path/'run/.model.pkl').exists()
    # the same images through the commands a user types: `voicegender train` reads each image's speaker from the table
    # `prepare` wrote beside them (the names of several corpora do not say it)
    rc, out, err = quiet(main, ['train', '--name', str(tmp_path/'cli_run'), '--images', str(tmp_path/'img'), '--splits',
                                str(tmp_path/'loco.csv'), '--fold', '1', '--no-pretrained', '--arch', 'resnet18', '--epochs', '1',
                                '--bs', '8', '--size', '24,48', '--distorted', 'none', '--exclude-speakers', 'az_like:01'])
    assert rc in (0, None), err
    pred = pd.read_csv(tmp_path/'cli_run/predictions.csv')
    assert set(pred.speaker) == set(sp[(sp.fold == 1) & (sp.role == 'test')].speaker) and set(pred.corpus) == {'manifest_like'}
    assert (tmp_path/'cli_run/model.safetensors').exists()
    rc, out, err = quiet(main, ['calibrate', str(tmp_path/'cli_run')])   # and calibrated on its validation speakers
    assert rc in (0, None), err
    cal = json.loads((tmp_path/'cli_run/calibration.json').read_text())
    assert cal['valid_speakers'] and all(s.startswith('az_like:') for s in cal['valid_speakers']), cal['valid_speakers']

def test_split_loco_needs_corpora(tmp_path):
    a = make_toy_corpus(tmp_path/'one', n_speakers=4, n_clips=2)
    rc, _, err = quiet(main, ['split', '--data', str(a), '--loco', '--out', str(tmp_path/'x.csv')])
    assert rc == 1 and '--loco and --holdout need corpora' in err, err

@pytest.fixture(scope='module')
def level_model(tmp_path_factory):
    from voicegender.train import tiny_learner
    return quiet(tiny_learner, tmp_path_factory.mktemp('lvl'), level=True, trim=True)[0]

def test_answers_ignore_the_recording_level(level_model):
    "The same clips at -20, 0 and +20 dB (no clipping): the same label, p(female) within 0.05."
    from voicegender.deploy import Predictor
    from voicegender.speech import synthetic_speech
    pred = Predictor(level_model, threshold=0.5, use_calibration=False)
    for f0, seed in [(120, 1), (220, 2), (160, 3)]:
        y = np.concatenate([np.zeros(SR//2), synthetic_speech(1.5, f0, seed=seed), np.zeros(SR//2)]).astype(np.float32)
        y = y/np.abs(y).max()*0.08                                                # +20 dB stays below full scale
        res = [pred.predict_audio(y*g) for g in (0.1, 1.0, 10.0)]
        p = [r['probabilities']['female'] for r in res]
        assert len({r['label'] for r in res}) == 1, res
        assert max(p) - min(p) <= 0.05, p

def test_clip_table_skips_a_fifo(tmp_path):
    "A FIFO named like a clip used to block `prepare` forever (sf.info waits for a writer); now it is reported and skipped."
    import os, signal
    from voicegender.data import clip_table
    a = make_toy_corpus(tmp_path/'c', n_speakers=2, n_clips=1)
    os.mkfifo(a/'data'/'01'/'0_01_9.wav')
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError('clip_table blocked on a FIFO')))
    signal.alarm(20)
    try: clips, report = clip_table(a)
    finally: signal.alarm(0)
    assert len(clips) == 2 and any('0_01_9.wav' in w and 'FIFO' in w for w in report), report

def test_an_interrupted_export_leaves_no_model(tmp_path, monkeypatch):
    "Issue #21.3: a train killed while exporting used to leave a 0-byte or truncated model.pkl; now nothing half-written stays."
    import torch
    from fastai.learner import Learner
    from voicegender.train import export_run_model
    from voicegender.model import gender_net, ModelSettings
    class Fake:   # what export_run_model uses of a Learner
        model = gender_net('resnet18')
        vg = ModelSettings('resnet18', (24, 48), ['female', 'male'], dict(seconds=1.0))
        def export(self, fname): Path(fname).write_bytes(b'half a pickle'); raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): export_run_model(Fake(), tmp_path)
    assert not (tmp_path/'model.pkl').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.json', 'model.safetensors']   # no temp file left either
    assert (tmp_path/'model.safetensors').exists() and (tmp_path/'model.json').exists()   # the weights-only model is whole

def test_the_shipped_model_loads_weights_only_and_answers(tmp_path, monkeypatch):
    "`voicegender predict` with no --model uses the model inside the package, read without unpickling anything."
    import pickle, builtins
    from voicegender.model import shipped_model, load_model
    from voicegender.deploy import cli_predict
    from voicegender.speech import synthetic_speech
    path = shipped_model()
    assert path.suffix == '.safetensors' and path.stat().st_size < 46e6
    with monkeypatch.context() as mp:   # loading the model file never reaches the unpickler (numba's own caches later may)
        mp.setattr(pickle, 'load', lambda *a, **k: (_ for _ in ()).throw(AssertionError('pickle.load called')))
        mp.setattr(pickle, 'loads', lambda *a, **k: (_ for _ in ()).throw(AssertionError('pickle.loads called')))
        m = load_model(path)
    assert m.settings['recipe'].get('level') and m.settings['calibration']['temperature'] > 0
    assert m.settings['training']['pretrained'] is False
    sf.write(tmp_path/'a.wav', synthetic_speech(2.0, 120, seed=4)*0.3, SR)
    r, out, err = quiet(cli_predict, [str(tmp_path/'a.wav'), '--json'])
    assert r == 0 and 'voicegender.safetensors' in err, err
    assert json.loads(out.splitlines()[0])['label'] in ('female', 'male', 'uncertain')

def speech_corpus(dest:Path, n_speakers:int=4, n_clips:int=2, seed:int=0)->Path:
    "A manifest corpus of synthetic speech that the speech detector accepts (1.2-2.2 s a clip)."
    from voicegender.speech import synthetic_speech
    rows = []
    for spk in range(n_speakers):
        for k in range(n_clips):
            f = dest/'audio'/f'{spk}_{k}.wav'; f.parent.mkdir(parents=True, exist_ok=True)
            y = synthetic_speech(1.2 + k, 215 if spk % 2 else 112, seed=seed + 10*spk + k)
            sf.write(f, np.concatenate([np.zeros(SR//4), y, np.zeros(SR//4)]).astype(np.float32), SR)
            rows.append(dict(path=str(f.relative_to(dest)), speaker=f'p{spk}', gender='female' if spk % 2 else 'male', age=30))
    pd.DataFrame(rows).to_csv(dest/MANIFEST, index=False)
    return dest

def test_train_on_every_window_through_the_commands(tmp_path):
    "prepare --windows (and its microphone copies), split --loco, train, calibrate: a clip answers by its windows' mean."
    one = speech_corpus(tmp_path/'one')
    sf.write(one/'audio/hum.wav', 0.01*np.sin(2*np.pi*50*np.arange(SR)/SR).astype(np.float32), SR)   # a clip without speech
    pd.concat([pd.read_csv(one/MANIFEST), pd.DataFrame([dict(path='audio/hum.wav', speaker='p0', gender='male', age=30)])]
              ).to_csv(one/MANIFEST, index=False)
    args = ['--data', str(one), '--data', str(speech_corpus(tmp_path/'two', seed=1))]
    rec = ['--n-mfcc', '40', '--n-mels', '80', '--level', '--cmn', '--windows', '--workers', '0', '--results', str(tmp_path/'res')]
    for extra, out in (([], 'img'), (['--distort', 'mic'], 'img_mic')):
        rc, out_, err = quiet(main, ['prepare', *args, *rec, *extra, '--out', str(tmp_path/out), '--maps', str(tmp_path/f'maps_{out}')])
        assert rc == 0, err
        assert '17 clips from 8 speakers' in out_ and 'images of 16 clips' in out_ and '1 without speech, 0 failed' in out_, out_
        assert 'note: ' in err and 'hum.wav: no speech found' in err and 'error:' not in err, err
    table = pd.read_csv(tmp_path/'img/images.csv')
    assert len(table) > 16 and table.groupby('clip').size().min() >= 1 and set(table.columns) >= {'clip', 'window', 'speaker'}
    assert sorted(pd.read_csv(tmp_path/'img_mic/images.csv').image) == sorted(table.image)   # copies at the same windows
    assert quiet(main, ['split', *args, '--loco', '--out', str(tmp_path/'loco.csv')])[0] == 0
    rc, out, err = quiet(main, ['train', '--name', str(tmp_path/'run'), '--images', str(tmp_path/'img'), '--distorted',
                                str(tmp_path/'img_mic'), '--splits', str(tmp_path/'loco.csv'), '--fold', '0', '--no-pretrained',
                                '--arch', 'resnet18', '--epochs', '1', '--bs', '4', '--size', '40,64'])
    assert rc in (0, None), err
    pred = pd.read_csv(tmp_path/'run/predictions.csv')
    test = pd.read_csv(tmp_path/'loco.csv').query('fold == 0 and role == "test"')
    assert len(pred) == 8 and set(pred.speaker) == set(test.speaker)   # one row a clip of the held-out corpus
    assert pred.n_windows.sum() == table.speaker.isin(test.speaker).sum()
    rc, out, err = quiet(main, ['calibrate', str(tmp_path/'run')])
    assert rc in (0, None), err
    cal = json.loads((tmp_path/'run/calibration.json').read_text())
    assert cal['test']['n_clips'] == 8 and cal['valid']['n_clips'] == table[table.speaker.isin(cal['valid_speakers'])]['clip'].nunique()
