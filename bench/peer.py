"""Peer benchmark: inaSpeechSegmenter 0.6.8 (speech/music/noise VAD + male/female CNN) on a list of clips.

inaSpeechSegmenter is never a dependency of voicegender; it lives in its own venv (`bash scripts/setup_peer.sh`):

    .venv-peer/bin/python bench/peer.py CLIPS.csv --out results/peer_inaseg.csv [--limit N]

CLIPS.csv needs a `path` column (absolute, or relative to the current folder). One output row per clip, keyed on
`path` as written in CLIPS.csv: seconds of female and male speech, speech_s = female + male, other_s = seconds
labelled noEnergy/noise/music, label = the gender with more seconds ('no speech' when neither has any), error (empty
when the clip was processed) and `seconds`, the wall time spent on the clip. Resumable: paths already in --out are
skipped; --out is rewritten atomically every 25 clips and at the end (also on Ctrl-C / SIGTERM).

Only the standard library and inaSpeechSegmenter's own dependencies are imported, so it runs in .venv-peer alone.
"""
import argparse, csv, os, signal, sys, threading, time, warnings

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
FIELDS = ['path', 'female_s', 'male_s', 'speech_s', 'other_s', 'label', 'error', 'seconds']
SAVE_EVERY = 25


def summarize(segs):
    "Seconds per label of one clip's segments [(label, start, stop)] -> the output columns."
    sec = {}
    for lab, start, stop in segs:
        sec[lab] = sec.get(lab, 0.0) + stop - start
    f, m = sec.pop('female', 0.0), sec.pop('male', 0.0)
    label = 'no speech' if f + m == 0 else 'female' if f > m else 'male'
    return dict(female_s=round(f, 2), male_s=round(m, 2), speech_s=round(f + m, 2),
                other_s=round(sum(sec.values(), 0.0), 2), label=label, error='')


def short_error(e):
    "One readable line: ffmpeg failures arrive as AssertionError(stderr bytes), whose last line says why."
    msg = e.args[0] if isinstance(e, AssertionError) and e.args else e
    if isinstance(msg, bytes):
        msg = msg.decode(errors='replace').strip().splitlines()[-1:] or ['ffmpeg failed']
        msg = msg[0]
    return f'{type(e).__name__}: {msg}'.replace('\n', ' ')[:300]


def save(rows, out):
    "Write all rows to a temp file beside `out`, then swap it in (a reader never sees half a file)."
    tmp = os.path.join(os.path.dirname(out) or '.', f'.{os.path.basename(out)}.tmp')
    with open(tmp, 'w', newline='') as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        w.writerows(rows.values())
    os.replace(tmp, out)


def features(paths, media2feats):
    """Yield (path, features or exception, seconds spent) with the next clip's ffmpeg decode + MFCC already
    running in a thread while the caller runs the networks on this one: the overlap that batch_process uses
    internally, but with a result and an error per clip (batch_process writes one CSV per clip instead).
    Measured on 30 clips (2 cores, 5 runs each, shared with other jobs): this 24.7 s mean, seg(path) per clip
    25.2 s, batch_process 25.9 s; same segments. The networks take ~85% of the time, so the gain is small."""
    def job(p, box):
        t = time.perf_counter()
        try:
            if not os.path.isfile(p):
                raise FileNotFoundError(f'no such file: {p}')
            box['r'] = media2feats(p, None, None, None, 'ffmpeg')
        except Exception as e:
            box['r'] = e
        box['t'] = time.perf_counter() - t
    def start(p):
        box = {}
        th = threading.Thread(target=job, args=(p, box))
        th.start()
        return box, th
    nxt = start(paths[0])
    for i, p in enumerate(paths):
        box, th = nxt
        th.join()
        if i + 1 < len(paths):  # start the next clip's decode before handing this one over
            nxt = start(paths[i + 1])
        yield p, box['r'], box['t']


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('clips', help='CSV with a `path` column')
    ap.add_argument('--out', default='results/peer_inaseg.csv')
    ap.add_argument('--limit', type=int, help='process at most N new clips (quick tries)')
    a = ap.parse_args()

    with open(a.clips, newline='') as fh:
        paths = list(dict.fromkeys(r['path'] for r in csv.DictReader(fh)))  # unique, in order
    rows = {}
    if os.path.exists(a.out):
        with open(a.out, newline='') as fh:
            rows = {r['path']: r for r in csv.DictReader(fh)}
    todo = [p for p in paths if p not in rows][:a.limit]
    print(f'{len(paths)} clips in {a.clips}, {sum(p in rows for p in paths)} already '
          f'in {a.out}, {len(todo)} to do', file=sys.stderr)
    if not todo:
        return

    # SIGTERM (kill PID) stops like Ctrl-C: the rows done so far are saved, a rerun resumes
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    t0 = time.perf_counter()
    warnings.filterwarnings('ignore')  # "media duration is short", TF deprecations
    import keras
    keras.utils.disable_interactive_logging()  # no progress bar per predict() call
    from inaSpeechSegmenter import Segmenter
    from inaSpeechSegmenter.features import media2feats
    seg = Segmenter(vad_engine='smn', detect_gender=True)
    t_load = time.perf_counter() - t0

    t1 = last = time.perf_counter()
    n = audio = 0
    try:
        for p, feats, t_feat in features(todo, media2feats):
            t = time.perf_counter()
            if isinstance(feats, Exception):
                r = dict(female_s='', male_s='', speech_s='', other_s='', label='', error=short_error(feats))
            else:
                try:
                    r = summarize(seg.segment_feats(*feats, 0))
                    audio += r['speech_s'] + r['other_s']
                except Exception as e:
                    r = dict(female_s='', male_s='', speech_s='', other_s='', label='', error=short_error(e))
            # clip time = its decode/features (overlapped with the previous clip's networks) + its networks
            rows[p] = dict(path=p, seconds=round(t_feat + time.perf_counter() - t, 3), **r)
            n += 1
            if n % SAVE_EVERY == 0 or n == len(todo):
                save(rows, a.out)
            if time.perf_counter() - last > 15 or n == len(todo):
                last = time.perf_counter()
                rate = n / (last - t1)
                print(f'{n}/{len(todo)}  {rate:.2f} clips/s  ETA {(len(todo) - n) / rate / 60:.1f} min',
                      file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        save(rows, a.out)
        print(f'interrupted after {n} clips; saved to {a.out} (a rerun resumes)', file=sys.stderr)
        sys.exit(130)

    wall = time.perf_counter() - t1
    errs = sum(1 for p in todo if rows[p]['error'])
    print(f'done: {n} clips ({errs} errors) in {wall:.1f} s + start-up (model load) {t_load:.1f} s; '
          f'{n / wall:.2f} clips/s, {audio / wall:.1f} audio s/s (real-time factor {wall / max(audio, 1e-9):.3f}); '
          f'-> {a.out}', file=sys.stderr)


if __name__ == '__main__':
    main()
