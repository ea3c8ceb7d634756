"""`predict --fusion`: the shipped Resemblyzer + LR head loads weights-only from JSON, and a clip's answer pools the
network's and the head's calibrated p(female) (`pool_log_odds`), judged against the mean of their thresholds."""
import io, json, contextlib
import numpy as np, soundfile as sf, pytest
from voicegender.core import SR, SHIPPED_MODEL, read_model_file
from voicegender.deploy import Predictor, FusionHead, FUSION_HEAD, pool_log_odds
from voicegender.speech import synthetic_speech, with_silence
from voicegender.train import tiny_learner
from voicegender.cli import main

try:
    from voicegender.baselines import _import_resemblyzer; _import_resemblyzer()   # with its pkg_resources shim
    RESEMBLYZER = True
except ImportError: RESEMBLYZER = False
pytestmark = [pytest.mark.skipif(not RESEMBLYZER, reason="needs resemblyzer: pip install 'voicegender[baselines]'"),
              pytest.mark.skipif(not FUSION_HEAD.exists(), reason="no fusion head in this installation")]


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp('run')
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return tiny_learner(d)


def test_shipped_head_is_weights_only_and_matches_the_shipped_model():
    d = json.loads(FUSION_HEAD.read_text())
    assert len(d['coef']) == len(d['mean']) == len(d['scale']) == 256 and 0.5 <= d['threshold'] < 1 and d['temperature'] > 0
    assert d['model_sha256'] == read_model_file(SHIPPED_MODEL)[0]['weights_sha256']
    y = with_silence(synthetic_speech(2.0, 210, seed=3))
    assert 0 < FusionHead().p_female(y) < 1


def test_fused_answer_pools_the_two(model, monkeypatch):
    y = with_silence(synthetic_speech(2.0, 120, seed=1))
    alone = Predictor(model)
    fused = Predictor(model, fusion=True)
    monkeypatch.setattr(FusionHead, 'p_female', lambda self, speech: 0.9)
    assert fused.threshold == pytest.approx((alone.threshold + fused.heads[0].threshold)/2)
    a, f = alone.predict_audio(y), fused.predict_audio(y)
    assert f['probabilities']['female'] == pytest.approx(pool_log_odds([a['probabilities']['female'], 0.9]), abs=2e-4)
    assert f['n_windows'] == a['n_windows'] and '_p_heads' not in f
    assert fused.predict_audio(np.zeros(2*SR, np.float32))['label'] == 'no speech'   # no speech: the head is not asked
    assert any('another model' in n for n in fused.notes)                              # the head was fitted beside the shipped model


def test_bad_head_file_is_refused(tmp_path):
    (tmp_path/'h.json').write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match='not a voicegender fusion head'): FusionHead(tmp_path/'h.json')
    with pytest.raises(FileNotFoundError, match='no fusion head'): FusionHead(tmp_path/'none.json')


def test_cli_fusion(tmp_path):
    sf.write(tmp_path/'a.wav', with_silence(synthetic_speech(2.0, 220, seed=2)), SR, subtype='PCM_16')
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(['predict', str(tmp_path/'a.wav'), '--fusion', '--json']) == 0
    r = json.loads(out.getvalue())
    assert 'fusion=resemblyzer' in err.getvalue() and r['label'] in ('female', 'male', 'uncertain')
    assert set(r['sources']) == {'network', 'resemblyzer'}                              # --json shows each source's own answer
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):   # a bare --fusion before the files
        assert main(['predict', '--fusion', str(tmp_path/'a.wav'), '--json']) == 0
    assert json.loads(out.getvalue())['probabilities'] == r['probabilities']
