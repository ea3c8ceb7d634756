"""predict and segment on a Dask LocalCluster (2 worker processes, 1 thread each) with a tiny model: the same answers
as the single-process path, a bad file isolated, resume after a killed run, a worker killed midway."""
import io, os, sys, json, time, signal, logging, subprocess, contextlib
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf, pytest

distributed = pytest.importorskip('distributed')
from voicegender.core import SR
from voicegender.deploy import Predictor
from voicegender.speech import synthetic_speech
from voicegender.cli import main
from voicegender.segment import segment_file
from voicegender.distributed import cluster_predict, cluster_segment, worker_predictor, local_client

ROOT = Path(__file__).resolve().parents[1]


def quiet(f, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): return f(*a, **k)


def run(cli, argv):
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        rc = cli(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    from voicegender.train import tiny_learner
    return quiet(tiny_learner, tmp_path_factory.mktemp('run'))


@pytest.fixture(scope='module')
def client():
    "One LocalCluster for the module: 2 worker processes, 1 thread each (the workers set 1 PyTorch thread)."
    with local_client(2) as c: yield c


def make_clips(folder, n, seconds=2.0):
    "n synthetic voices, low and high, in two sub-folders that hold the same file names."
    folder = Path(folder)
    for i in range(n):
        f = folder/('a' if i % 2 else 'b')/f'clip{i//2:02d}.wav'; f.parent.mkdir(parents=True, exist_ok=True)
        y = np.concatenate([np.zeros(SR//4), synthetic_speech(seconds, 110 + 25*i, seed=i), np.zeros(SR//4)])
        sf.write(f, y.astype(np.float32), SR)
    return sorted(folder.rglob('*.wav'))


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp('clips'), 8)


def outputs(out): return sorted(p for p in Path(out).rglob('*.json') if not p.name.startswith('.'))


def wait_idle(client, timeout=30):
    "Until the cluster runs nothing (tasks of a cancelled job finish or are dropped)."
    t0 = time.time()
    while any(client.processing().values()) and time.time() - t0 < timeout: time.sleep(0.1)
    time.sleep(0.3)


def test_same_answers_as_single_process(client, model, clips, tmp_path):
    "Results equal Predictor.predict_file's; two folders' equal names get two outputs; each worker loads the model once."
    client.run(worker_predictor.cache_clear)
    res = cluster_predict(client, [clips[0].parent.parent], tmp_path/'out', model)
    pred = Predictor(model)
    assert [r['path'] for r in res] == [str(f) for f in clips]
    for f,r in zip(clips, res):
        assert r == pred.predict_file(f), f       # every field: label, probabilities, windows, speech seconds...
    assert [p.relative_to(tmp_path/'out').as_posix() for p in outputs(tmp_path/'out')] == \
           [f'{d}/clip{i:02d}.json' for d in 'ab' for i in range(4)]
    assert json.loads((tmp_path/'out/a/clip00.json').read_text()) == res[clips.index(clips[0].parent.parent/'a/clip00.wav')]
    table = pd.read_csv(tmp_path/'out/predictions.csv')
    assert table.path.tolist() == [str(f) for f in clips]
    assert np.allclose(table.p_female, [r['probabilities']['female'] for r in res])
    assert set(client.run(os.environ.get, 'MALLOC_TRIM_THRESHOLD_').values()) == {None}   # 1.7x slower with it
    loads = client.run(worker_predictor.cache_info)
    assert sum(c.misses for c in loads.values()) == 2 and all(c.misses <= 1 for c in loads.values()), loads
    assert sum(c.hits for c in loads.values()) == len(clips) - 2


def test_index_file_and_glob_inputs(client, model, clips, tmp_path):
    "An archive index (CSV with a path column, relative to it) and a glob: exactly the files they name."
    root = clips[0].parent.parent
    (root/'index.csv').write_text('path,note\n' + ''.join(f'{f.relative_to(root)},x\n' for f in clips[:3]))
    res = cluster_predict(client, [root/'index.csv', str(root/'a'/'clip03.*')], tmp_path/'out', model)
    assert [r['path'] for r in res] == [str(f) for f in clips[:3]] + [str(root/'a'/'clip03.wav')]
    assert all('error' not in r for r in res)
    assert len(outputs(tmp_path/'out')) == 4


def test_bad_file_isolated_predict_cli(client, model, clips, tmp_path):
    "A corrupt WAV is a row with its error, the others are answered, exit code 1; the rows stream to stdout as JSON."
    bad = tmp_path/'corrupt.wav'; bad.write_bytes(b'RIFF\x24\x00\x00\x00WAVEfmt junk')
    files = [str(clips[0]), str(bad), str(clips[1])]
    rc, out, err = run(lambda a: main(['predict', *a]), files + ['--model', str(model), '--scheduler', client.scheduler.address,
                                             '--out', str(tmp_path/'out'), '--json'])
    assert rc == 1, err
    rows = {r['path']: r for r in map(json.loads, out.splitlines())}
    assert set(rows) == set(files)
    assert 'error' in rows[str(bad)] and 'label' not in rows[str(bad)]
    assert all(rows[f]['label'] in ('female', 'male', 'uncertain') for f in files if f != str(bad))
    table = pd.read_csv(tmp_path/'out/predictions.csv')
    assert table.path.tolist() == files and table.error.notna().tolist() == [False, True, False]
    assert '3 files: 2 done now, 0 done before (skipped), 1 failed' in err
    # the table format of the plain command, and a rerun that only retries the failed file
    rc, out, err = run(lambda a: main(['predict', *a]), files + ['--model', str(model), '--scheduler', client.scheduler.address,
                                             '--out', str(tmp_path/'out')])
    assert rc == 1 and out.splitlines()[0].split()[:2] == ['file', 'answer'] and len(out.splitlines()) == 4
    assert '2 done before (skipped), 1 failed' in err


def test_segment_cli_on_cluster(client, model, clips, tmp_path):
    "segment --scheduler: the segments files and totals of the single-process path, a table, a rerun that skips."
    bad = tmp_path/'empty.wav'; bad.write_bytes(b'')
    argv = [str(clips[0]), str(clips[3]), str(bad), '--model', str(model), '--scheduler', client.scheduler.address,
            '--out', str(tmp_path/'seg'), '--format', 'rttm', '--json']
    rc, out, err = run(lambda a: main(['segment', *a]), argv)
    assert rc == 1, err
    rows = [json.loads(l) for l in out.splitlines()]
    by = {r['path']: r for r in rows}
    assert 'error' in by[str(bad)]
    ref = segment_file(clips[0], Predictor(model))
    assert by[str(clips[0])]['totals'] == ref['totals'] and by[str(clips[0])]['n_segments'] == len(ref['segments'])
    assert sorted(f.name for f in (tmp_path/'seg').glob('*.rttm')) == [clips[0].stem + '.rttm', clips[3].stem + '.rttm']
    table = pd.read_csv(tmp_path/'seg/totals.csv')
    assert table.path.tolist() == [str(clips[0]), str(clips[3]), str(bad)]
    assert np.allclose(table.female_s[:2], [by[str(c)]['totals']['female_s'] for c in (clips[0], clips[3])])
    rc, out, err = run(lambda a: main(['segment', *a]), argv)
    assert [json.loads(l).get('skipped', False) for l in out.splitlines()] == [True, True, False]
    assert pd.read_csv(tmp_path/'seg/totals.csv').equals(table)


def test_workers_flag_starts_a_local_cluster(model, clips, tmp_path):
    "--workers 1 without a scheduler: a LocalCluster of its own (one process: quick to start), the same answers."
    rc, out, err = run(lambda a: main(['predict', *a]), [str(f) for f in clips[:2]] + ['--model', str(model), '--workers', '1',
                                                                   '--out', str(tmp_path/'out'), '--json'])
    assert rc == 0, err
    assert 'dask: 1 worker,' in err
    pred = Predictor(model)
    assert [json.loads(l)['probabilities'] for l in out.splitlines()] == [pred.predict_file(f)['probabilities']
                                                                          for f in clips[:2]]


def test_resume_after_killed_run(client, model, tmp_path):
    "The client is killed (SIGKILL) after a few results; a rerun submits exactly the files without a result."
    files = make_clips(tmp_path/'clips', 16, seconds=3.0)
    out = tmp_path/'out'
    cmd = [sys.executable, '-c', 'import sys; from voicegender.cli import main; sys.exit(main())', 'predict',
           str(tmp_path/'clips'), '--model', str(model), '--scheduler', client.scheduler.address, '--out', str(out), '--json']
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')])}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        for _ in range(3): assert p.stdout.readline(), "the run ended before 3 results"
    finally: p.send_signal(signal.SIGKILL); p.wait()
    wait_idle(client)                     # the scheduler drops the dead client's tasks; running ones finish
    done = outputs(out)
    assert 3 <= len(done) < len(files), len(done)
    lost = done[-1]; lost.unlink(); done = done[:-1]    # an output lost too: it must be redone
    before = {f: f.stat().st_mtime_ns for f in done}
    got = []
    res = cluster_predict(client, [tmp_path/'clips'], out, model, on_result=got.append)
    ran = sorted(r['path'] for r in got if not r.get('skipped'))
    expected = sorted(str(f) for f in files if (out/f.relative_to(tmp_path/'clips')).with_suffix('.json') not in before)
    assert ran == expected and str(tmp_path/'clips'/lost.relative_to(out).with_suffix('.wav')) in ran
    assert all(f.stat().st_mtime_ns == t for f,t in before.items())   # the finished files were not rewritten
    assert len(outputs(out)) == len(files) and all('error' not in r for r in res)
    table = pd.read_csv(out/'predictions.csv')
    assert sorted(table.path) == sorted(str(f) for f in files) and table.path.is_unique


def test_worker_killed_midway(client, model, tmp_path):
    "One worker process dies while it works: its tasks run again elsewhere; each file has one result, once."
    files = make_clips(tmp_path/'clips', 16, seconds=3.0)
    client.wait_for_workers(2)
    killed = {}
    def kill_one(r):
        if killed: return
        busy = [w for w,keys in client.processing().items() if keys]
        assert busy, "no worker busy: the job ended before the kill"
        killed['worker'] = busy[0]; killed['tasks'] = len(client.processing()[busy[0]])
        pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
        os.kill(pid, signal.SIGKILL)
    got = []
    res = cluster_predict(client, [tmp_path/'clips'], tmp_path/'out', model,
                          on_result=lambda r: (got.append(r), kill_one(r)))
    assert killed and killed['tasks'] >= 1 and len(got) == len(files)
    assert killed['worker'] not in client.scheduler_info()['workers']    # that process is gone (the nanny starts another)
    assert sorted(r['path'] for r in got) == sorted(str(f) for f in files)   # each file once, none lost
    assert all('error' not in r for r in res)
    assert len(outputs(tmp_path/'out')) == len(files)
    pred = Predictor(model)
    assert [r['probabilities'] for r in res] == [pred.predict_file(f)['probabilities'] for f in files]
    table = pd.read_csv(tmp_path/'out/predictions.csv')
    assert table.path.tolist() == [str(f) for f in files]
