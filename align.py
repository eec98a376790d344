"""Preference-tune a grec SFT checkpoint: `accelerate launch align.py --checkpoint ... --method sdpo ...`.

The flags are those of `grec align --help`, also readable from `--config FILE.yaml`.
"""

import sys

from grec.cli import main

if __name__ == "__main__":
    sys.exit(main(["align", *sys.argv[1:]]))
