"""Regenerate docs/results.md from the committed record in results/ (voicegender.report); sections whose inputs are not
committed (the baselines' feature caches, results/clips.csv) say which command makes them.

    python bench/report.py                      # writes docs/results.md
    python bench/report.py --out - --root results
    python bench/report.py --update-baselines   # also our ResNet rows in results/baselines.csv (needs results/clips.csv)"""
import argparse, sys
from pathlib import Path
from voicegender.core import RESULTS
from voicegender.report import results_page, write_results_page, resnet_row, missing_note, read_json, CLIPS_CSV

def update_baselines(root):
    "Our ResNet rows in the baselines' table, with their measured latency (`bench/latency.py`)."
    if note := missing_note([Path(root)/CLIPS_CSV], 'voicegender prepare'): print(note, file=sys.stderr); return
    ms = lambda f: (read_json(Path(root)/f) or {}).get('median_ms', {}).get('total')
    resnet_row('s32_trim_distort_e10', ms('bench_latency.json'), root)
    for run in ('c40m80_trim_distort_e10', 'c40m80_trim_distort_e10_x13'):   # the same network and input: the same latency
        resnet_row(run, ms('bench_latency_c40m80.json'), root)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='docs/results.md', help="the page to write ('-': print it)")
    p.add_argument('--root', default=RESULTS, help="the record of experiments")
    p.add_argument('--update-baselines', action='store_true', help="write our ResNet rows into results/baselines.csv first")
    a = p.parse_args()
    if a.update_baselines: update_baselines(a.root)
    if a.out == '-': print(results_page(a.root), end='')
    else: print(f"wrote {write_results_page(a.out, a.root)}")
