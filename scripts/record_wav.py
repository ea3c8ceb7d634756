#!/usr/bin/env python
"""Record a clip from the microphone into my_wavs/ (same as `voicegender record`; see --help).

    python scripts/record_wav.py                 # 1 s, 16 kHz mono, after a 3 s countdown
    python scripts/record_wav.py --seconds 3 --device 2
    python scripts/record_wav.py --list-devices

The logic lives in voicegender/record.py (`record_clip`, `cli_record`); this file only calls it.
"""
import sys
from pathlib import Path

try: from voicegender.record import cli_record
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from voicegender.record import cli_record

if __name__ == '__main__': sys.exit(cli_record(sys.argv[1:]))
