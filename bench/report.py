"""Print the README's result tables (markdown) from what the benchmark scripts saved in results/.

    python bench/report.py"""
import json, glob
from pathlib import Path
import pandas as pd

LEVERS = {  # results/levers/<name>: what changed against the default recipe
    'base': "default: reference MFCC images (12 x 98 gray), 64x128, one-cycle 5 epochs, MFCC augmentation, class-weighted loss, label smoothing 0.1",
    'rel_deltas': "images: c0 relative to the loudest frame + RGB (MFCC, delta, delta-delta)",
}

def levers_table():
    rows = []
    for name, what in LEVERS.items():
        f = Path(f'results/levers/{name}/cv.json')
        if not f.exists(): continue
        r = json.loads(f.read_text())
        rows.append(f"| {name} | {what} | {r['clip_acc_mean']:.1%} +- {r['clip_acc_std']:.1%} | "
                    f"{r['speakers_correct']}/{r['n_speakers']} | {r['balanced_accuracy']:.1%} | "
                    f"{', '.join(map(str, r['flagged_speakers'])) or '-'} | {r['clip_acc_without_flagged']:.1%} | "
                    f"{r['always_male']:.1%} | {r['train_seconds']/60:.0f} |")
    head = ("| run | what changed | clip accuracy (mean +- sd over 5 folds) | speakers right | balanced accuracy | "
            "flagged labels | clip accuracy without flagged | always 'male' | training minutes (5 folds) |\n|---|---|---|---|---|---|---|---|---|")
    return head + '\n' + '\n'.join(rows)

def ensemble_row(names=('base', 'rel_deltas')):
    "Mean of the runs' probabilities per clip (same folds, same test speakers): the lever 'ensemble'."
    from voicegender.train import clip_metrics
    import numpy as np
    ps = [pd.read_csv(f'results/levers/{n}/oof_predictions.csv').assign(clip=lambda d: d.path.map(lambda p: Path(p).stem)).set_index('clip').sort_index() for n in names]
    assert all(len(p) == len(ps[0]) and (p.index == ps[0].index).all() for p in ps)
    oof = ps[0].assign(p_female=sum(p.p_female for p in ps)/len(ps))
    accs = [clip_metrics(d)['accuracy'] for _,d in oof.groupby('fold')]
    sd = np.std(accs, ddof=1)
    m = clip_metrics(oof)
    return (f"| ensemble | mean probability of {' + '.join(names)} (no extra training) | {np.mean(accs):.1%} +- {sd:.1%} | "
            f"{m['speakers_correct']}/{m['n_speakers']} | {m['balanced_accuracy']:.1%} | | | {(oof.gender == 'male').mean():.1%} | |")

def resnet_row(name='base', cpu_ms=None):
    "Our ResNet-34 as a row of results/baselines.csv, scored by the baselines' own code on the same folds."
    import numpy as np
    from voicegender.baselines import score_probs, result_row, update_results_row
    from voicegender.data import load_splits
    clips = pd.read_csv('results/clips.csv')
    oof = pd.read_csv(f'results/levers/{name}/oof_predictions.csv')
    p = dict(zip(oof.path.map(lambda s: Path(s).stem), oof.p_female))
    pf = clips.path.map(lambda s: p.get(Path(s).stem, np.nan)).values
    s = score_probs(np.stack([pf, 1 - pf], 1), clips, load_splits())
    cv = json.loads(Path(f'results/levers/{name}/cv.json').read_text())
    row = result_row(f"ResNet-34 on MFCC images ({name}, from scratch)", s, params=21_813_056, pretrained=False, cpu_ms=cpu_ms,
                     train_seconds=cv['train_seconds']/len(cv['folds']),
                     notes="this project's default recipe; 5 epochs one-cycle on 1 CPU thread (machine shared); see README")
    update_results_row('results/baselines.csv', row)
    return row

def audit_table(name='base'):
    a = pd.read_csv(f'results/levers/{name}/label_audit.csv').head(5)
    return a.to_markdown(index=False, floatfmt='.2f') if hasattr(a, 'to_markdown') else a.to_string(index=False)

if __name__ == '__main__':
    lat = json.loads(Path('results/bench_latency.json').read_text()) if Path('results/bench_latency.json').exists() else {}
    print(resnet_row(cpu_ms=lat.get('median_ms', {}).get('total')))
    print(levers_table()); print(ensemble_row() if all(Path(f'results/levers/{n}/cv.json').exists() for n in ('base','rel_deltas')) else ''); print()
    for f in ['results/bench_prepare.json', 'results/bench_size.json', 'results/bench_train.json']:
        if Path(f).exists(): print(f, json.loads(Path(f).read_text()), '\n')
    if Path('results/baselines.csv').exists(): print(pd.read_csv('results/baselines.csv').to_string(index=False))
    for n in LEVERS:
        if Path(f'results/levers/{n}/label_audit.csv').exists(): print(n); print(pd.read_csv(f'results/levers/{n}/label_audit.csv').head(6).to_string(index=False))
