"Segment: the decoder on synthetic posteriors, every output format read back, resume, a bad file in a batch, memory."
import io, re, json, contextlib, resource, tracemalloc
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf, pytest
from voicegender.core import SR
from voicegender.speech import speech_segments, synthetic_speech
from voicegender.segment import (decode, runs, STATES, FORMATS, segment_file, segment_files, segment_audio, cli_segment,
                                 analysis_blocks, file_chunks)
from voicegender.train import tiny_learner

STEP = 0.05


# ---------------------------------------------------------------- the decoder, on synthetic posteriors
def turns(path): return [(STATES[s], round(a*STEP, 3), round(b*STEP, 3)) for s,a,b in runs(path)]


def observations(spec, seed=0, noise=0.1):
    "spec: (state, seconds, p_female) parts -> per-step speech share, p(female), truth."
    rng = np.random.default_rng(seed)
    truth = np.concatenate([np.full(int(round(sec/STEP)), STATES.index(s)) for s,sec,_ in spec])
    p = np.concatenate([np.full(int(round(sec/STEP)), np.nan if q is None else q) for _,sec,q in spec])
    p = np.clip(p + rng.normal(0, noise, len(p)), 0, 1)
    return (truth > 0).astype(float), p, truth


@pytest.mark.parametrize('min_turn', [0.5, 1.0, 2.0, 3.0])
def test_min_length_honoured(min_turn):
    "Whatever the evidence, no female/male segment is shorter than min_turn, no pause shorter than min_pause."
    rng = np.random.default_rng(int(min_turn*10))
    p = rng.uniform(0, 1, 600)                  # pure noise: the evidence wants to flip all the time
    speech = (rng.uniform(0, 1, 600) > 0.2).astype(float)
    path = decode(speech, p, step=STEP, min_turn=min_turn, min_pause=0.4, switch=0.1, pause=0.1)
    for lab,a,b in turns(path):
        assert b - a >= (min_turn if lab != 'no speech' else 0.4) - 1e-9, (lab, a, b)


def test_short_flip_removed_long_kept():
    speech, p, truth = observations([('female', 12, 0.8), ('no speech', 1.5, None), ('male', 8, 0.2)])
    flip = p.copy(); flip[60:72] = 0.05          # 0.6 s the windows call male, inside the woman's turn
    for min_turn in (0.5, 1.0):
        path = decode(speech, flip, step=STEP, min_turn=min_turn, switch=3)
        assert [l for l,_,_ in turns(path)] == ['female', 'no speech', 'male'] and (path == truth).mean() > 0.97
    long = p.copy(); long[80:140] = 0.02         # 3 s the windows are sure of: 11.7 nats
    assert [l for l,_,_ in turns(decode(speech, long, step=STEP, switch=3))] == ['female', 'male', 'female', 'no speech', 'male']
    # too high a switch penalty costs whole turns: 11.7 nats of male evidence against 12.5 of female, but two changes
    # at 8 nats each would be needed to keep both, so the whole woman's turn goes to the man
    assert [l for l,_,_ in turns(decode(speech, long, step=STEP, switch=8))] == ['male', 'no speech', 'male']


def test_no_speech_kept():
    "No speech stays no speech: not bridged by strong gender evidence around it, and never given a gender."
    speech, p, truth = observations([('female', 4, 0.95), ('no speech', 2, None), ('female', 4, 0.95)])
    assert turns(decode(speech, p, step=STEP)) == [('female', 0, 4), ('no speech', 4, 6), ('female', 6, 10)]
    assert (decode(np.zeros(200), np.full(200, np.nan), step=STEP) == 0).all()
    # p(female) where the speech detector heard nothing does not make speech
    assert (decode(np.zeros(200), np.full(200, 0.99), step=STEP) == 0).all()


def test_gender_change_across_a_pause_costs_the_switch():
    "A short made-up pause is no cheaper way to change gender than a direct switch."
    speech, p, _ = observations([('female', 6, 0.7), ('male', 3, 0.3), ('female', 6, 0.7)], noise=0)
    assert [l for l,_,_ in turns(decode(speech, p, step=STEP, switch=3, pause=0.1))] == ['female']


# ---------------------------------------------------------------- a stand-in Predictor (fast, deterministic)
class LoudIsFemale:
    "The Predictor's interface without a network: energy VAD; a window is female when it is loud (test voices only)."
    seconds, threshold = 1.0, 0.6
    def speech(self, y): return speech_segments(y, SR, vad='energy'), []
    def images(self, y, windows): return [y[s:e] for s,e in windows], np.arange(len(windows))
    def window_probs(self, images, owner, n):
        pf = np.array([0.9 if np.abs(im).max() > 0.3 else 0.1 for im in images])
        return np.stack([pf, 1 - pf], 1)


def voices(pattern, sr=SR, seed=0):
    "('f'|'m'|'-', seconds) parts: loud (female to the stand-in) and quiet (male) synthetic speech, silences."
    rng = np.random.default_rng(seed)
    parts = [synthetic_speech(s, 220, sr, seed=i) if k == 'f' else 0.4*synthetic_speech(s, 110, sr, seed=i) if k == 'm'
             else np.zeros(int(s*sr), np.float32) for i,(k,s) in enumerate(pattern)]
    y = np.concatenate(parts)
    return (y + rng.normal(0, 0.001, len(y))).astype(np.float32)


TALK = [('-', 1), ('f', 5), ('-', 1), ('m', 4), ('-', 1.5), ('f', 3), ('-', 1)]   # 16.5 s


# ---------------------------------------------------------------- output formats, read back by independent readers
def read_textgrid(text):
    "A small reader of Praat's long TextGrid format: {tier name: [(xmin, xmax, text)]}, checking the header."
    assert text.startswith('File type = "ooTextFile"\nObject class = "TextGrid"'), text[:60]
    tiers = {}
    for block in re.split(r'\n\s*item \[\d+\]:\n', text)[1:]:
        assert re.search(r'class = "IntervalTier"', block)
        name = re.search(r'name = "(.*)"', block).group(1)
        n = int(re.search(r'intervals: size = (\d+)', block).group(1))
        iv = re.findall(r'intervals \[\d+\]:\s*xmin = ([\d.]+)\s*xmax = ([\d.]+)\s*text = "((?:[^"]|"")*)"', block)
        assert len(iv) == n
        tiers[name] = [(float(a), float(b), t.replace('""', '"')) for a,b,t in iv]
    return tiers


def read_rttm(text):
    rows = []
    for line in text.splitlines():
        f = line.split()
        assert len(f) == 10 and f[0] == 'SPEAKER' and f[2] == '1' and f[5] == f[6] == f[9] == '<NA>', line
        rows.append((f[1], float(f[3]), float(f[4]), f[7], float(f[8])))
    return rows


def test_every_format_reads_back(tmp_path):
    sf.write(tmp_path/'my talk.wav', voices(TALK), SR)
    res = segment_file(tmp_path/'my talk.wav', LoudIsFemale())
    segs = res['segments']
    assert [s[0] for s in segs] == ['no speech', 'female', 'no speech', 'male', 'no speech', 'female', 'no speech'], segs
    assert res['totals']['female_share'] == pytest.approx(8/12, abs=0.05)
    for fmt in FORMATS:
        [r] = list(segment_files([tmp_path/'my talk.wav'], LoudIsFemale(), tmp_path/'out', fmt))
        assert r['segments'] == segs
        text = Path(r['output']).read_text()
        if fmt == 'csv':
            t = pd.read_csv(io.StringIO(text), sep='\t', keep_default_na=False)
            assert list(t.columns) == ['labels', 'start', 'stop', 'p_female']
            assert list(zip(t.labels, t.start, t.stop)) == [s[:3] for s in segs]
            assert [None if v == '' else float(v) for v in t.p_female] == [s[3] for s in segs]
        elif fmt == 'textgrid':
            [(name, iv)] = read_textgrid(text).items()
            assert name == 'gender' and iv == [(a, b, l) for l,a,b,_ in segs]
            assert iv[0][0] == 0 and iv[-1][1] == res['duration']
            assert all(a[1] == b[0] for a,b in zip(iv, iv[1:]))       # the intervals tile the file
        elif fmt == 'rttm':
            rows = read_rttm(text)
            speech = [s for s in segs if s[0] != 'no speech']
            assert [(f, l) for f,_,_,l,_ in rows] == [('my_talk', s[0]) for s in speech]
            for (_,a,d,l,c),s in zip(rows, speech):
                assert a == pytest.approx(s[1]) and a + d == pytest.approx(s[2], abs=1e-3)
                assert c == pytest.approx(s[3] if l == 'female' else 1 - s[3], abs=1e-4)
        else:
            assert [tuple(json.loads(l).values()) for l in text.splitlines()] == [tuple(s) for s in segs]
    assert sorted(p.name for p in (tmp_path/'out').iterdir()) == sorted('my talk' + ext for ext,_ in FORMATS.values())


def test_blocks_tile_and_file_chunks_resample(tmp_path):
    x = voices(TALK, 22050)
    sf.write(tmp_path/'a.flac', x, 22050)
    streamed = np.concatenate(list(file_chunks(tmp_path/'a.flac', blocksize=3000)))
    assert abs(len(streamed) - len(x)*SR/22050) <= 1
    blocks = list(analysis_blocks(file_chunks(tmp_path/'a.flac', 3000), 4*SR, SR))
    assert [c for c,_,_,_ in blocks] == list(range(0, len(streamed), 4*SR))
    for c,e,a,y in blocks: np.testing.assert_array_equal(y, streamed[a:min(e + SR, len(streamed))])


# ---------------------------------------------------------------- memory: a 20-minute file
def test_long_file_bounded_memory(tmp_path):
    "Peak memory does not grow with the length: 20 minutes need what 3 minutes need, far below the decoded signal."
    piece = voices([('f', 4), ('-', 1), ('m', 4), ('-', 1)], 22050)            # 10 s at 22.05 kHz (resampled)
    for n in (18, 120):
        with sf.SoundFile(tmp_path/f'{n}.wav', 'w', 22050, 1, 'PCM_16') as f:
            for _ in range(n): f.write(piece)
    peaks = {}
    segment_file(tmp_path/'18.wav', LoudIsFemale())                              # one-time imports and caches
    for n in (18, 120):
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        res = segment_file(tmp_path/f'{n}.wav', LoudIsFemale())
        peaks[n] = tracemalloc.get_traced_memory()[1]/2**20; tracemalloc.stop()
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0)/1024  # MB (Linux reports kB)
        assert 'error' not in res, res
    signal_mb = 1200*SR*4/2**20                                                   # 73 MB at 16 kHz float32
    assert peaks[120] < peaks[18] + 5, peaks                                      # 6.7 x longer, same peak
    assert peaks[120] < signal_mb/2 and grew < signal_mb/2, (peaks, grew)
    assert res['duration'] == pytest.approx(1200, abs=0.01)
    t = res['totals']
    assert t['female_share'] == pytest.approx(0.5, abs=0.05) and t['no_speech_s'] == pytest.approx(240, rel=0.2)
    assert len(res['segments']) > 400


# ---------------------------------------------------------------- the command, with a real (tiny) model
@pytest.fixture(scope='module')
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp('run')
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return tiny_learner(d)


def run_cli(argv):
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        rc = cli_segment(argv)
    return rc, out.getvalue(), err.getvalue()


def test_batch_with_bad_file_and_resume(model, tmp_path):
    d = tmp_path/'in'; (d/'sub').mkdir(parents=True); out = tmp_path/'out'
    sf.write(d/'a.wav', voices(TALK), SR); sf.write(d/'sub/a.ogg', voices(TALK[:3]), SR)
    (d/'bad.wav').write_bytes(b'RIFF\x10\x00\x00\x00WAVEfmt ')
    (d/'empty.wav').write_bytes(b'')
    rc, o, err = run_cli([str(d), '--model', str(model), '--out', str(out), '--format', 'rttm', '--json'])
    rows = {str(Path(r['path']).relative_to(d)): r for r in map(json.loads, o.splitlines())}
    assert rc == 1 and set(rows) == {'a.wav', 'sub/a.ogg', 'bad.wav', 'empty.wav'}
    assert 'not readable' in rows['bad.wav']['error'] and 'empty' in rows['empty.wav']['error']
    assert rows['a.wav']['totals']['no_speech_s'] == pytest.approx(4.5, abs=0.6)
    assert sorted(str(p.relative_to(out)) for p in out.rglob('*.rttm')) == ['a.rttm', 'sub/a.rttm']
    assert not list(out.rglob('.*'))                                     # no temporary files left
    before = (out/'a.rttm').stat().st_mtime_ns
    rc, o, _ = run_cli([str(d), '--model', str(model), '--out', str(out), '--format', 'rttm'])   # resume
    assert rc == 1 and o.count('skipped') == 2 and o.count('error') == 2, o
    assert (out/'a.rttm').stat().st_mtime_ns == before
    rc, o, _ = run_cli([str(d/'a.wav'), '--model', str(model), '--out', str(out), '--format', 'rttm', '--force'])
    assert rc == 0 and 'skipped' not in o and (out/'a.rttm').stat().st_mtime_ns > before
    assert run_cli([str(d), '--model', str(tmp_path/'none.pkl')])[0] == 2
