#!/usr/bin/env bash
# Create .venv-peer/ with inaSpeechSegmenter 0.6.8, the peer that bench/peer.py compares voicegender with.
# It is never a dependency of voicegender: it lives in its own venv. 0.6.8 is the last version whose
# models ship inside its wheel, so nothing is downloaded at run time (only pip and apt are used here).
# Re-runnable: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
V=.venv-peer
export TF_CPP_MIN_LOG_LEVEL=2
fail() { echo "setup_peer.sh: FAILED: $*" >&2; exit 1; }
trap 'fail "command on line $LINENO exited with $?"' ERR

# ffmpeg: inaSpeechSegmenter decodes every input (WAV, Opus, ...) through it
if ! command -v ffmpeg >/dev/null; then
    echo "installing ffmpeg (apt-get)"
    { apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null; } || fail "apt-get install ffmpeg"
fi

[ -x $V/bin/python ] || "$PY" -m venv $V || fail "could not create $V with $PY"
if ! $V/bin/python -c "import inaSpeechSegmenter, tensorflow" 2>/dev/null; then
    echo "installing inaspeechsegmenter 0.6.8 + tensorflow 2.15.1 into $V (a few minutes)"
    $V/bin/python -m pip install -q --upgrade pip || fail "pip upgrade"
    # tensorflow 2.15 is built against numpy 1.x
    $V/bin/python -m pip install -q "inaspeechsegmenter==0.6.8" "tensorflow==2.15.1" "numpy<2" \
        || fail "pip install inaspeechsegmenter==0.6.8 tensorflow==2.15.1 (tensorflow 2.15 needs Python 3.9-3.11: PYTHON=python3.11 bash $0)"
fi

# Two fixes for the numpy >= 1.24 these old sources meet (idempotent: a fixed line no longer matches)
SITE=$($V/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
MFCC=$SITE/inaSpeechSegmenter/sidekit_mfcc.py
VIT=$SITE/pyannote/algorithms/utils/viterbi.py
[ -f "$MFCC" ] && [ -f "$VIT" ] || fail "expected $MFCC and $VIT"
# numpy.int is gone
sed -i 's/dtype=numpy\.int\b/dtype=int/g' "$MFCC"
# np.vstack no longer takes a generator. viterbi.py has two `np.vstack(<generator on 2 lines>).T`: from a line
# ending in `np.vstack(` to the next `).T`, make them `np.vstack(list(` ... `)).T` (a patched call no longer starts the range)
sed -i -E '/np\.vstack\($/,/^\s*\)\.T$/{s/np\.vstack\($/np.vstack(list(/; s/^(\s*)\)\.T$/\1)).T/}' "$VIT"
if grep -q 'dtype=numpy\.int\b' "$MFCC"; then fail "patch of $MFCC did not apply"; fi
if grep -q 'np\.vstack($' "$VIT"; then fail "patch of $VIT did not apply"; fi

# Smoke test: segment 3 s of generated noise (runs the patched code; the models load from the wheel, offline)
T=$(mktemp --suffix=.wav)
ffmpeg -loglevel error -y -f lavfi -i "anoisesrc=d=3:a=0.1" -ar 16000 -ac 1 "$T" || fail "ffmpeg could not write a test WAV"
$V/bin/python -c "import sys; from inaSpeechSegmenter import Segmenter
print('segments:', Segmenter(vad_engine='smn', detect_gender=True)(sys.argv[1]))" "$T" >/tmp/setup_peer_smoke.log 2>&1 \
    || { tail -n 5 /tmp/setup_peer_smoke.log >&2; rm -f "$T"; fail "inaSpeechSegmenter does not run in $V"; }
rm -f "$T"
grep '^segments:' /tmp/setup_peer_smoke.log
echo "inaSpeechSegmenter 0.6.8 OK in $V"
