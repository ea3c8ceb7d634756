"The cross-corpus bench's own arithmetic: the README's short table and the 'uncertain' threshold checks."
import importlib.util
from pathlib import Path
import numpy as np, pandas as pd

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('ccbench', ROOT/'bench/crosscorpus.py'); cc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cc)

def _rows(method, accs):
    return [dict(method=method, heldout=c, group='adults', balanced_accuracy=a) for c,a in zip(('a', 'b'), accs)]

def test_summary_table_folds_seeds_into_one_row():
    rows = (_rows('ResNet-18, x', (0.90, 0.80)) + _rows('ResNet-18, x_seed1', (0.92, 0.84)) + _rows('ResNet-18, x_seed2', (0.88, 0.82))
            + _rows('ResNet-18 x seeds 42 + 1 + 2 (ensemble)', (0.99, 0.99)) + _rows('peer', (0.85, 0.85)))
    lines = cc.summary_table(rows).splitlines()
    assert len(lines) == 4, lines                      # header, rule, the recipe, the peer: ensembles are left out
    assert lines[2] == '| ResNet-18, x | 3 | 90.0 (88.0-92.0) | 82.0 (80.0-84.0) | **86.0** |', lines[2]
    assert lines[3] == '| peer | - | 85.0 | 85.0 | **85.0** |', lines[3]

def test_answered_right_counts_uncertain_and_no_speech_as_not_right():
    r = pd.DataFrame(dict(gender=['female', 'female', 'male', 'male'], p_female=[0.9, 0.55, 0.2, np.nan]))
    s = cc.answered_right(r, 0.6)
    assert s['coverage'] == 0.5 and s['answered_accuracy'] == 1.0
    assert s['balanced_right'] == (0.5 + 0.5)/2        # women: 1 of 2 answered and right; men: 1 of 2 (no speech)
    assert cc.answered_right(r, 0.5)['balanced_right'] == (1 + 0.5)/2

def test_transfer_threshold_is_the_lowest_corpus_threshold():
    def corpus(name, low):   # 190 right answers at 0.52-0.99 and 10 wrong ones at `low`: 95 % right at full coverage
        conf = np.r_[np.linspace(0.52, 0.99, 190), np.full(10, low)]
        right = np.r_[np.ones(190, bool), np.zeros(10, bool)]
        female = np.arange(200) % 2 == 0
        p = np.where(female == right, conf, 1 - conf)   # p(female) on the side the answer takes
        return pd.DataFrame(dict(corpus=name, gender=np.where(female, 'female', 'male'), p_female=p))
    a, b = corpus('a', 0.55), corpus('b', 0.65)
    ta, tb = cc.transfer_threshold(a), cc.transfer_threshold(b)
    assert 0.5 < ta < tb < 0.7, (ta, tb)              # a corpus with surer mistakes needs a higher threshold
    assert cc.transfer_threshold(pd.concat([a, b])) == ta

def test_rows_name_their_network():
    assert cc.net_name('level_mic_cmn') == 'ResNet-34' and cc.net_name('level_mic_cmn_r18') == 'ResNet-18'

def test_each_baseline_has_its_own_predictions_file():
    "The baselines' names map to distinct CSVs (the YIN variant must not overwrite the acoustic GBM's), and the YIN set keeps YIN's F0."
    from voicegender.baselines import ACOUSTIC_COLUMNS, PYIN_COLUMNS, YIN_COLUMNS
    names = ['acoustic statistics + LR', 'acoustic statistics + GBM', 'Resemblyzer + LR', cc.YIN_GBM, *cc.HEAD_BASELINES.values()]
    assert len({cc.baseline_csv(n) for n in names}) == len(names)
    assert cc.baseline_csv('acoustic statistics + GBM').name == 'baseline_acoustic_gbm_model.csv'   # the names results/ already holds
    assert cc.baseline_csv(cc.HEAD_BASELINES['yin']).name == 'baseline_yin_gbm_predict_input_model.csv'
    assert set(PYIN_COLUMNS) < set(ACOUSTIC_COLUMNS) and 'f0_yin_median' in YIN_COLUMNS
    assert set(YIN_COLUMNS) | set(PYIN_COLUMNS) == set(ACOUSTIC_COLUMNS) and not set(YIN_COLUMNS) & set(PYIN_COLUMNS)

def test_calibration_floor_scores():
    "The floor probe's balanced accuracy is the mean of the two recalls; its ECE is zero for sure, right answers."
    spec = importlib.util.spec_from_file_location('calfloor', ROOT/'bench/calibration_floor.py'); cf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cf)
    g = pd.Series(['female', 'female', 'male', 'male', 'male', 'male'])
    assert cf.balanced(np.array([0.9, 0.2, 0.1, 0.1, 0.1, 0.8]), g) == (0.5 + 0.75)/2
    assert cf.ece(np.array([1., 1., 0., 0., 0., 0.]), g) == 0.0 and cf.ece(np.array([.9, .9, .1, .1, .1, .1]), g) > 0.09

def test_redrawn_scores_every_column_on_the_same_speaker_redraws():
    "The speaker bootstrap behind compare/noise/noise3: a right column scores 1 on every redraw, 'always female' 0.5."
    r = pd.DataFrame(dict(speaker=['a', 'a', 'b', 'c', 'c', 'd'], gender=['female', 'female', 'female', 'male', 'male', 'male']))
    r = r.assign(right=(r.gender == 'female').astype(float), female=1.0)
    full, draws = cc.redrawn(r, ['right', 'female'], 50, np.random.default_rng(0))
    assert full == {'right': 1.0, 'female': 0.5} and draws.shape == (50, 2)
    assert (draws[:, 0] == 1).all() and (draws[:, 1] == 0.5).all()
    assert cc.interval_95(np.arange(101)) == [2.5, 97.5]
