"""`predict --fusion yin`: a head of YIN pitch, spectral and MFCC statistics and a GBM kept as plain numbers in JSON
(no pickle, no resemblyzer needed); several heads are pooled with the network (mean log-odds), each weighing as much as it."""
import io, json, contextlib
import numpy as np, pytest
from voicegender.core import SR
from voicegender.deploy import Predictor, FusionHead, FUSION_FORMAT
from voicegender.baselines import YIN_COLUMNS, yin_features, gbm_model, gbm_to_dict, gbm_proba
from voicegender.calibrate import softmax
from voicegender.speech import synthetic_speech, with_silence
from voicegender.train import tiny_learner


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp('run')
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return tiny_learner(d)


def yin_head(path, **kw):
    "A head from a GBM fitted on YIN statistics of synthetic voices: low F0 male, high female."
    ys = [with_silence(synthetic_speech(1.0, f0, seed=i)) for i,f0 in enumerate([100, 110, 120, 130, 200, 215, 230, 245]*3)]
    X = np.array([list(yin_features(y).values()) for y in ys]); g = gbm_model(min_samples_leaf=2).fit(X, [1, 1, 1, 1, 0, 0, 0, 0]*3)
    head = dict(format=FUSION_FORMAT, source='yin', features=YIN_COLUMNS, gbm=gbm_to_dict(g), temperature=2.0, threshold=0.7, **kw)
    path.write_text(json.dumps(head)); return g


def test_yin_head_scores_like_its_gbm(tmp_path):
    g = yin_head(tmp_path/'yin.json')
    h = FusionHead(tmp_path/'yin.json'); y = with_silence(synthetic_speech(1.5, 125, seed=99))
    p = g.predict_proba([list(yin_features(y).values())])[0]
    assert h.source == 'yin' and h.p_male(y) == pytest.approx(p[1], abs=1e-12)
    want = softmax(np.log(np.clip([p], 1e-6, 1 - 1e-6)), 2.0)[0, 0]   # the head's temperature
    assert h.p_female(y) == pytest.approx(want, abs=1e-9)


def test_two_heads_and_the_network_weigh_the_same(model, tmp_path, monkeypatch):
    yin_head(tmp_path/'a.json'); yin_head(tmp_path/'b.json')
    y = with_silence(synthetic_speech(2.0, 140, seed=5))
    alone, fused = Predictor(model), Predictor(model, fusion=f"{tmp_path/'a.json'},{tmp_path/'b.json'}")
    assert [h.source for h in fused.heads] == ['yin', 'yin'] and 'fusion=yin+yin' in repr(fused)
    assert fused.threshold == pytest.approx((alone.threshold + 0.7 + 0.7)/3)
    monkeypatch.setattr(FusionHead, 'p_female', lambda self, speech: 0.2 if self.path.name == 'a.json' else 0.8)
    a, f = alone.predict_audio(y), fused.predict_audio(y)
    q = a['probabilities']['female']                                            # the heads' log-odds cancel: a third of the network's is left
    assert f['probabilities']['female'] == pytest.approx(1/(1 + ((1 - q)/q)**(1/3)), abs=2e-4)
    assert set(f) == set(a) | {'sources'} and 'sources' not in a              # each source's own p(female), with --fusion only
    assert f['sources'] == {'network': pytest.approx(q, abs=1e-4), 'yin:a': 0.2, 'yin:b': 0.8}


def test_heads_hear_the_speech_at_a_steady_level(tmp_path):
    yin_head(tmp_path/'yin.json')
    pred = Predictor(fusion=str(tmp_path/'yin.json'))   # the shipped model: its recipe removes the level
    y = with_silence(synthetic_speech(1.5, 210, seed=7), before=0.5, after=0.5)
    x = pred.head_input(y)
    assert x is not None and 1.2*SR < len(x) < 1.9*SR                         # the speech span, not the silences
    quiet = pred.head_input(y*10**(-20/20))
    assert len(quiet) == len(x) and np.allclose(quiet, x, atol=1e-4)           # -20 dB: the same input (level steadied)
    assert pred.head_input(np.zeros(SR, np.float32)) is None


def test_bad_yin_head_is_refused(tmp_path):
    (tmp_path/'h.json').write_text(json.dumps(dict(format=FUSION_FORMAT, source='yin', features=YIN_COLUMNS[:-1],
                                                   gbm={}, temperature=1, threshold=0.6)))
    with pytest.raises(ValueError, match='not those of this version'): FusionHead(tmp_path/'h.json')
    (tmp_path/'h.json').write_text(json.dumps(dict(format=FUSION_FORMAT, source='wav2vec', temperature=1, threshold=0.6)))
    with pytest.raises(ValueError, match='unknown fusion source'): FusionHead(tmp_path/'h.json')


def test_serve_answers_with_the_heads(model, tmp_path):
    "`serve --fusion` gives the API the same pooled answer `predict --fusion` gives."
    pytest.importorskip('fastapi', reason="needs the serve extra")
    from fastapi.testclient import TestClient
    from voicegender.serve import make_app, TimedPredictor
    import soundfile as sf
    yin_head(tmp_path/'yin.json')
    y = with_silence(synthetic_speech(1.5, 180, seed=11))
    buf = io.BytesIO(); sf.write(buf, y, SR, format='WAV', subtype='FLOAT')
    with TestClient(make_app(TimedPredictor(model, fusion=str(tmp_path/'yin.json')))) as client:
        r = client.post('/predict', files={'file': ('clip.wav', buf.getvalue(), 'audio/wav')}).json()
    want = Predictor(model, fusion=str(tmp_path/'yin.json')).predict_audio(y)
    assert r['probabilities'] == want['probabilities'] and r['label'] == want['label'] and r['sources'] == want['sources']


def test_a_head_failing_on_one_file_does_not_stop_the_batch(model, tmp_path, monkeypatch):
    import soundfile as sf
    yin_head(tmp_path/'yin.json')
    sf.write(tmp_path/'a.wav', with_silence(synthetic_speech(1.0, 130, seed=1)), SR)
    sf.write(tmp_path/'b.wav', with_silence(synthetic_speech(2.5, 210, seed=2)), SR)
    def p_female(self, speech):
        if len(speech) > 2*SR: raise ValueError("head broke on this clip")
        return 0.3
    monkeypatch.setattr(FusionHead, 'p_female', p_female)
    pred = Predictor(model, fusion=str(tmp_path/'yin.json'))
    a, b = pred.predict_files([tmp_path/'a.wav', tmp_path/'b.wav'])
    assert a['sources']['yin'] == 0.3 and 'error' not in a
    assert b['path'].endswith('b.wav') and 'head broke on this clip' in b['error']
