"""The inference engine: onnxruntime gives the reference path's probabilities, threads are honoured, a folder of many
files runs in bounded memory with results streamed, and the ONNX export matches the torch network."""
import io, json, contextlib, tracemalloc
from pathlib import Path
import numpy as np, soundfile as sf, pytest
from voicegender.core import SR
from voicegender.deploy import Predictor, cli_predict
from voicegender.speech import synthetic_speech
from voicegender.mfcc import model_input
from voicegender.train import tiny_learner

pytest.importorskip('onnxruntime')


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp('run')
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return tiny_learner(d)


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp('clips')
    for k in range(12):
        y = np.concatenate([np.zeros(SR//4), synthetic_speech(0.8 + 0.3*(k % 5), [105, 125, 210, 240][k % 4], seed=k),
                            np.zeros(SR//4)]).astype(np.float32)
        sf.write(d/f'clip{k:02d}.wav', y, SR, subtype='PCM_16')
    return sorted(d.glob('*.wav'))


def test_engine_matches_the_reference_path(model, clips):
    onnx, ref = Predictor(model, engine='onnx', threads=1), Predictor(model, engine='torch', threads=1)
    assert (onnx.model.engine, ref.model.engine) == ('onnx', 'torch')
    batched = list(onnx.predict_files(clips, batch=5, read_ahead=3))
    for f, b in zip(clips, batched):
        r = ref.predict_file(f)
        assert b['path'] == str(f) and b['label'] == r['label'], (b, r)
        assert abs(b['probabilities']['female'] - r['probabilities']['female']) <= 2e-4, (b, r)
    ims = [np.random.default_rng(i).integers(0, 256, (40, 101), dtype=np.uint8) for i in range(6)]
    np.testing.assert_allclose(onnx.model.logits(ims), ref.model.logits(ims), atol=1e-4)


def test_threads_are_honoured(model, clips):
    import torch
    pred = Predictor(model, engine='onnx', threads=2)
    assert pred.model.net.session.get_session_options().intra_op_num_threads == 2
    Predictor(model, engine='torch', threads=1)
    assert torch.get_num_threads() == 1
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert cli_predict([str(clips[0]), '--model', str(model), '--threads', '1']) == 0
    assert 'threads=1' in err.getvalue() and 'engine=onnx' in err.getvalue(), err.getvalue()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
        cli_predict([str(clips[0]), '--threads', '0'])


def test_many_files_bounded_memory_and_streamed(model, clips, tmp_path):
    "Peak memory does not grow with the number of files, and the first answers come before most files are read."
    for n in (40, 240):
        d = tmp_path/str(n); d.mkdir()
        for k in range(n): (d/f'{k:04d}.wav').symlink_to(clips[k % len(clips)])
    pred = Predictor(model, threads=1)
    list(pred.predict_files([tmp_path/'40'], batch=16, read_ahead=4))            # one-time imports and caches
    peaks = {}
    for n in (40, 240):
        tracemalloc.start()
        rows = list(pred.predict_files([tmp_path/str(n)], batch=16, read_ahead=4))
        peaks[n] = tracemalloc.get_traced_memory()[1]/2**20; tracemalloc.stop()
        assert len(rows) == n and all('error' not in r for r in rows)
    assert peaks[240] < peaks[40] + 2, peaks                                     # 6 x the files, the same peak (MB)
    read, plain = [], pred.read_file
    pred.read_file = lambda p: (read.append(p), plain(p))[1]
    stream = pred.predict_files([tmp_path/'240'], batch=16, read_ahead=4)
    first = next(stream)
    assert first['path'].endswith('0000.wav') and len(read) < 40, len(read)      # answered long before the end
    stream.close()


def test_export_onnx_matches_torch(model, tmp_path):
    import onnxruntime as ort
    from voicegender.model import cli_export_onnx, load_model
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_export_onnx([str(model), '--out', str(tmp_path/'m.onnx')]) == 0
    settings = json.loads((tmp_path/'m.json').read_text())
    m = load_model(model)
    ims = [np.random.default_rng(i).integers(0, 256, (40, 101), dtype=np.uint8) for i in range(4)]
    x = model_input(ims, tuple(settings['size']), settings.get('normalize', ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))))
    got = ort.InferenceSession(str(tmp_path/'m.onnx'), providers=['CPUExecutionProvider']).run(None, {'images': x})[0]
    np.testing.assert_allclose(got[:, m.order], m.logits(ims), atol=1e-4)


def test_predict_loads_no_librosa(tmp_path):
    "`voicegender predict` answers without importing librosa's audio stack (scipy.signal, numba: ~2 s of start-up), resampling included."
    import subprocess, sys
    f = tmp_path/'clip_44k.wav'
    sf.write(f, synthetic_speech(1.5, 210, sr=44_100, seed=3), 44_100, subtype='PCM_16')
    code = ("import sys; from voicegender.cli import main; main(['predict', '--json', sys.argv[1]]); "
            "print(sorted(m for m in sys.modules if m.startswith(('librosa.', 'scipy.signal', 'scipy.ndimage', 'numba'))))")
    out = subprocess.run([sys.executable, '-c', code, str(f)], capture_output=True, text=True, timeout=300).stdout.splitlines()
    assert json.loads(out[0])['label'] in ('female', 'male', 'uncertain'), out
    assert out[-1] == "['librosa.version']", out
