"The results page is regenerated from the committed record: its numbers are the files', and a missing input is a note."
import json, shutil, subprocess, sys
from pathlib import Path
import pytest
from voicegender.report import results_page, write_results_page, lever_cv, pct, LEVERS

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT/'results'
needs_record = pytest.mark.skipif(not (RECORD/'levers'/'base'/'cv.json').exists(), reason='no committed record')

@needs_record
def test_page_rows_are_the_record(tmp_path):
    out = tmp_path/'results.md'
    subprocess.run([sys.executable, str(ROOT/'bench'/'report.py'), '--out', str(out), '--root', str(RECORD)], cwd=tmp_path, check=True,
                   env={'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin'})
    page = out.read_text()
    for name in ('base', 's32_trim_distort_e10', 'c40m80_trim_distort_e10_x13'):
        cv = json.loads((RECORD/'levers'/name/'cv.json').read_text())
        row = next(l for l in page.splitlines() if l.startswith(f'| {name} | '))
        cells = [c.strip() for c in row.split('|')[1:-1]]
        assert cells[2] == f"{cv['clip_acc_mean']*100:.1f} % +- {cv['clip_acc_std']*100:.1f} %", row
        assert cells[5] == f"{cv['speakers_correct']}/{cv['n_speakers']}", row
    cc = json.loads((RECORD/'crosscorpus.json').read_text())['rows']
    az = next(r for r in cc if r['method'] == 'ResNet-34, level_mic_cmn' and r['heldout'] == 'audiomnist_az' and r['group'] == 'adults')
    assert f"**{az['balanced_accuracy']:.1%}**" in page

@needs_record
def test_missing_input_is_a_note(tmp_path):
    # the record only: a working copy's results/ also holds trained weights (GBs), which the page never reads
    root = tmp_path/'results'; shutil.copytree(RECORD, root, ignore=shutil.ignore_patterns('*.safetensors', '*.pkl', '*.pth', '*.onnx'))
    (root/'robustness.json').unlink(); (root/'bench_train.json').unlink()
    page = results_page(root)
    assert "`" + str(root/'robustness.json') + "` is missing (made by `python bench/robustness.py RUN`)" in page
    assert str(root/'bench_train.json') + "` is missing" in page
    assert 'clips.csv` is missing' in page or (root/'clips.csv').exists()   # the refits' inputs are not committed

def test_empty_record_gives_notes_not_errors(tmp_path):
    page = write_results_page(tmp_path/'page.md', tmp_path/'nothing').read_text()
    assert page.count('is missing') >= 10 and 'Traceback' not in page
