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

def test_model_scripts_take_a_weights_only_model():
    "The scripts that load a model name it with --model NAME.safetensors (or a run's), never 'the newest model.pkl'."
    for script in ('bench/latency.py', 'bench/serve_load.py', 'bench/abuse.py', 'scripts/calibration_figures.py'):
        r = subprocess.run([sys.executable, str(ROOT/script), '--help'], capture_output=True, text=True, timeout=300)
        text = ' '.join(r.stdout.split())
        assert r.returncode == 0 and '--model' in text and 'safetensors' in text and 'newest' not in text, (script, r.stderr[-500:])
    for script in ('bench/tta.py', 'bench/train_speed.py', 'scripts/gradcam_figures.py'):
        r = subprocess.run([sys.executable, str(ROOT/script), '--help'], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and 'newest' not in r.stdout, (script, r.stderr[-500:])
    for script in ('bench/latency.py', 'bench/serve_load.py', 'bench/tta.py', 'bench/train_speed.py', 'bench/abuse.py',
                   'scripts/calibration_figures.py'):
        src = (ROOT/script).read_text()
        assert 'newest_model' not in src and 'load_learner' not in src and '.learn' not in src, script
