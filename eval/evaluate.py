"""Score result files: `python eval/evaluate.py --input_dir outputs` (flags: `grec evaluate --help`).

Needs grec installed (`make install`, or `pip install -e .`), as train.py and inference.py do.
"""

import sys

from grec.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
