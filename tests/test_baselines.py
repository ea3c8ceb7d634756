"Results-table merging from several processes, and the bench entry point."
import subprocess, sys, multiprocessing as mp
from pathlib import Path
import pandas as pd
from voicegender.baselines import update_results_row, RESULT_COLUMNS

ROOT = Path(__file__).resolve().parent.parent

def _writer(args):
    csv, who, n = args
    for i in range(n): update_results_row(csv, dict(method=f'{who}-{i}', clip_acc_mean=i, notes=who))

def test_concurrent_writers_lose_no_row(tmp_path):
    csv = tmp_path/'baselines.csv'
    update_results_row(csv, dict(method='ResNet-34 (ours)', clip_acc_mean='70.0'))
    with mp.get_context('spawn').Pool(3) as pool: pool.map(_writer, [(csv, w, 15) for w in 'abc'])
    df = pd.read_csv(csv, keep_default_na=False)
    assert len(df) == 46 and df.method.is_unique
    assert list(df.columns) == RESULT_COLUMNS
    update_results_row(csv, dict(method='ResNet-34 (ours)', clip_acc_mean='72.5'))
    df = pd.read_csv(csv, keep_default_na=False, dtype=str)
    assert df.loc[df.method == 'ResNet-34 (ours)', 'clip_acc_mean'].tolist() == ['72.5'] and len(df) == 46
    assert not list(tmp_path.glob('.*.tmp'))

def test_bench_scripts_have_help():
    for script in ('bench/baselines.py', 'bench/wav2vec2_cost.py'):
        r = subprocess.run([sys.executable, str(ROOT/script), '--help'], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and '--threads' in r.stdout, (script, r.stderr[-500:])
