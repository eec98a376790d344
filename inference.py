"""Rank items: `python inference.py --checkpoint out/best --test_data_path test.json --result_json_data out.json`.

The flags are those of `grec infer --help` (BIGRec's names: --lora_weights, --num_beams, ...).
"""

import sys

from grec.cli import main

if __name__ == "__main__":
    sys.exit(main(["infer", *sys.argv[1:]]))
