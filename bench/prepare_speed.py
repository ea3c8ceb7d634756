"""Clips per second for turning a corpus into MFCC images: voicegender's `prepare` against the reference notebook's way.

    python bench/prepare_speed.py [--data ../shared/data/audiomnist_az] [--workers 2]

Reference way (as the AudioMNIST gender notebook does it), frozen as this benchmark first ran it (5d419a8): one file
at a time, `librosa.load` at its default rate (22,050 Hz), the loudest second found by prefix sums, the same MFCC
recipe in librosa's one call (`librosa.feature.mfcc` of the pre-emphasised signal), `skimage.io.imsave`. (Until
8fddecb it called voicegender's own `fix_duration` and `mfcc`, so each speed-up of ours sped the reference up too.) Ours: `voicegender.mfcc.prepare` (soundfile decode, 16 kHz,
all cores). Each way runs --repeats times, alternated; the medians are compared. Also the share of time our per-clip path spends decoding, computing MFCCs and writing images (one core).

Both ways write into a temporary folder under --tmp (default: .tmp/ in the project, beside the mfc_dataset/ that
`prepare` fills for users). The disk's state is part of what is timed: creating one small file cost 0.02-0.40 ms of
CPU on this machine from one minute to the next (`file_create_cpu_ms` records what a run met), and our way spends
about a quarter to two fifths of its time writing. So every timed run starts after `os.sync()`, and no output is
deleted until the end (deleting thousands of files between runs slowed the next runs' writes). Each run's kernel CPU a
clip (`kernel_cpu_ms_per_clip`) shows the disk's state: on this ext4 without a journal, creating a file after thousands
were deleted scans the inode table (`perf`: `recently_deleted`), and the same work took 0.3 to 0.9 ms of kernel CPU a clip.
So the same alternated runs are also made with both ways writing into memory (`--mem-tmp`, default /dev/shm, a tmpfs):
the pipeline's own work without the disk's state (`memory_backed` in the results)."""
import argparse, json, os, shutil, tempfile, time, platform
from pathlib import Path
import numpy as np, librosa, warnings
from voicegender.data import clip_table
from voicegender.mfcc import prepare, mfcc_image, pre_emphasis, to_uint8, save_jpeg, MFCC
from voicegender.core import load_audio, SR

def reference_fix_duration(y, n):
    "The loudest n samples (zero-padded when shorter), by prefix sums: as the reference loop first did."
    y = y - y.mean()
    if len(y) <= n: left = (n - len(y))//2; return np.pad(y, (left, n - len(y) - left)).astype(np.float32)
    e = np.concatenate([[0.], np.cumsum(y.astype(np.float64)**2)]); win = e[n:] - e[:-n]
    best = np.flatnonzero(win >= win.max()*(1-1e-9)); start = int(best[len(best)//2])
    return y[start:start+n].astype(np.float32)

def reference_mfcc(y, sr, n_mfcc=MFCC['n_mfcc'], n_mels=MFCC['n_mels'], win_ms=MFCC['win_ms'], hop_ms=MFCC['hop_ms'],
                   lifter=MFCC['lifter'], preemph=MFCC['preemph']):
    "The reference recipe in librosa's one call, as the notebook computes it."
    n_fft = round(sr*win_ms/1000)
    if len(y) < n_fft: y = np.pad(y, (0, n_fft-len(y)))
    return librosa.feature.mfcc(y=pre_emphasis(y, preemph), sr=sr, n_mfcc=n_mfcc, dct_type=2, norm='ortho', lifter=lifter,
                                n_fft=n_fft, win_length=n_fft, hop_length=round(sr*hop_ms/1000), power=2.0, center=False,
                                window='hann', n_mels=n_mels)

def reference_way(paths, out):
    from skimage import io
    for p in paths:
        y, sr = librosa.load(p)                                   # default: resample to 22,050 Hz
        m = reference_mfcc(reference_fix_duration(y, sr), sr)     # same recipe, windows in ms
        with warnings.catch_warnings():
            warnings.simplefilter('ignore'); io.imsave(out/(Path(p).stem + '.jpg'), to_uint8(m), check_contrast=False)

def stage_shares(paths, out):
    t = dict(decode=0., mfcc=0., write=0.)
    for p in paths:
        t0 = time.perf_counter(); y = load_audio(p); t1 = time.perf_counter()
        im = mfcc_image(y); t2 = time.perf_counter(); save_jpeg(im, out/(Path(p).stem + '.jpg')); t3 = time.perf_counter()
        t['decode'] += t1-t0; t['mfcc'] += t2-t1; t['write'] += t3-t2
    tot = sum(t.values())
    return {k: round(v/tot, 3) for k,v in t.items()} | {'ms_per_clip_one_core': round(tot/len(paths)*1000, 2)}

def file_create_ms(folder, n=1000, size=2500):
    "CPU ms to create one small file here (open, write, close): what any way of writing one image a clip pays at least."
    folder.mkdir(parents=True, exist_ok=True); data = b'x'*size; c = time.process_time()
    for i in range(n): (folder/f'{i}.bin').write_bytes(data)
    return round((time.process_time() - c)/n*1000, 3)

def timed_runs(clips, ref_paths, tmp:Path, repeats:int, workers:int)->dict:
    "Alternated timed runs of both ways writing under `tmp`: clips/s, their medians and the kernel CPU a clip."
    ours_runs, ref_runs, sys_ms = [], [], dict(ours=[], reference=[])
    def kernel_ms(t0, t1, n):   # CPU ms a clip spent in the kernel (all processes of this benchmark): file creation mostly
        return round((t1.system - t0.system + t1.children_system - t0.children_system)/n*1000, 2)
    for k in range(repeats):   # alternated, so a slow spell of the machine hits both ways alike
        os.sync()   # before each timed run: the disk's pending writes of the run before are not charged to this one
        c = os.times(); t = time.perf_counter(); r = prepare(clips, tmp/f'ours{k}', tmp/f'maps{k}', n_workers=workers, progress=False)
        ours_runs.append(len(clips)/(time.perf_counter() - t))   # its images stay until the end: deleting thousands of
        sys_ms['ours'].append(kernel_ms(c, os.times(), len(clips)))  # files mid-benchmark slowed the next runs' writes
        (tmp/f'ref{k}').mkdir()   # a new folder each run, as ours: both create every file (rewriting a file in place is cheaper)
        os.sync(); c = os.times(); t = time.perf_counter(); reference_way(ref_paths, tmp/f'ref{k}'); ref_runs.append(len(ref_paths)/(time.perf_counter() - t))
        sys_ms['reference'].append(kernel_ms(c, os.times(), len(ref_paths)))
        print(f"{tmp}: run {k+1}/{repeats}: ours {ours_runs[-1]:.0f} clips/s, reference {ref_runs[-1]:.0f} clips/s "
              f"(kernel CPU a clip: {sys_ms['ours'][-1]} / {sys_ms['reference'][-1]} ms)", flush=True)
    ours, ref = float(np.median(ours_runs)), float(np.median(ref_runs))
    return dict(images=r['images'], errors=len(r['errors']), ours_clips_per_s=round(ours, 1), reference_clips_per_s=round(ref, 1),
                speedup=round(ours/ref, 2), runs=dict(ours=[round(x) for x in ours_runs], reference=[round(x) for x in ref_runs]),
                kernel_cpu_ms_per_clip=sys_ms)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(); ap.add_argument('--data', default='../shared/data/audiomnist_az')
    ap.add_argument('--workers', type=int, default=os.cpu_count()); ap.add_argument('--ref-clips', type=int, default=0,
                    help="clips for the (slow) reference way; 0 = all")
    ap.add_argument('--repeats', type=int, default=3, help="timed runs of each way (the medians are compared)")
    ap.add_argument('--tmp', default='.tmp', help="where both ways write (a temporary folder inside it; default: .tmp/)")
    ap.add_argument('--mem-tmp', default='/dev/shm', help="a memory-backed folder for the same runs without the disk ('' to skip)")
    a = ap.parse_args()
    clips, _ = clip_table(a.data)
    Path(a.tmp).mkdir(parents=True, exist_ok=True); tmp = Path(tempfile.mkdtemp(dir=a.tmp))
    mem = Path(tempfile.mkdtemp(dir=a.mem_tmp)) if a.mem_tmp and os.access(a.mem_tmp, os.W_OK) else None
    try:
        for p in clips.path: Path(p).read_bytes()   # same page cache for both ways: every file read once before timing
        prepare(clips.head(8), tmp/'warm', tmp/'warm_maps', n_workers=0, progress=False)   # import/JIT warm-up
        ref_paths = list(clips.path if not a.ref_clips else clips.path.head(a.ref_clips))
        (tmp/'ref').mkdir(); reference_way(ref_paths[:4], tmp/'ref')
        disk = timed_runs(clips, ref_paths, tmp/'runs', a.repeats, a.workers)
        in_memory = timed_runs(clips, ref_paths, mem/'runs', a.repeats, a.workers) if mem else None
        shares = stage_shares(list(clips.path.head(500)), tmp/'shares')
        res = dict(clips=len(clips), **disk, reference='librosa.load, prefix-sum crop, librosa.feature.mfcc, skimage.io.imsave (as in 5d419a8)', workers=a.workers, repeats=a.repeats, our_time_shares=shares,
                   file_create_cpu_ms=file_create_ms(tmp/'bare'), cpu_count=os.cpu_count(), load_avg_1min=os.getloadavg()[0],
                   written_under=str(Path(a.tmp).resolve()), machine=platform.processor() or platform.machine())
        if in_memory: res['memory_backed'] = in_memory | dict(written_under=str(Path(a.mem_tmp).resolve()))
        print(json.dumps(res, indent=1))
        Path('results').mkdir(exist_ok=True); Path('results/bench_prepare.json').write_text(json.dumps(res, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if mem: shutil.rmtree(mem, ignore_errors=True)
