"""Training and inference cost on this machine: seconds per epoch, peak memory, and end-to-end latency for one 1 s clip.

    python bench/train_speed.py [--size 32,64] [--epochs 1] [--clips 50]

Trains `--epochs` epochs of the default recipe on fold 0 (from scratch), then times load -> MFCC -> model ->
probabilities for one 1 s clip with the run's weights-only model (model.safetensors, as `voicegender predict` loads
it), median of `--clips` runs. Writes results/bench_train.json."""
import argparse, json, os, resource, time, tempfile, platform
from pathlib import Path

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--size', default='32,64'); ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--clips', type=int, default=50); a = ap.parse_args()
    import numpy as np, pandas as pd, torch
    from voicegender.train import train_fold, TrainConfig
    from voicegender.model import load_model
    from voicegender.mfcc import mfcc_image
    from voicegender.core import load_audio, SR
    size = tuple(int(x) for x in a.size.split(','))
    run = Path(tempfile.mkdtemp())/'run'
    t = time.perf_counter()
    m = train_fold(run, TrainConfig(pretrained=False, size=size, epochs=a.epochs), progress=False)
    total = time.perf_counter() - t
    peak_train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024
    hist = pd.read_csv(run/'history.csv')
    model = load_model(run/'model.safetensors')
    clips = pd.read_csv('results/clips.csv').path.sample(a.clips, random_state=0).tolist()
    lat = []
    for i,c in enumerate(clips):
        t = time.perf_counter(); y = load_audio(c); p = model.probs([mfcc_image(y, SR, **model.recipe)]); lat.append(time.perf_counter()-t)
    res = dict(size=list(size), epochs=a.epochs, seconds_per_epoch=round(m['train_seconds']/a.epochs, 1),
               fold_run_seconds=round(total, 1), peak_rss_mb=round(peak_train), latency_ms_median=round(float(np.median(lat[3:]))*1000, 1),
               latency_ms_p90=round(float(np.percentile(lat[3:], 90))*1000, 1), torch_threads=torch.get_num_threads(),
               cpu_count=os.cpu_count(), load_avg_1min=round(os.getloadavg()[0], 2), machine=platform.processor() or platform.machine())
    print(json.dumps(res, indent=1))
    Path('results/bench_train.json').write_text(json.dumps(res, indent=1))
