"""Fine-tune a recommender: `accelerate launch train.py --base_model ... --train_data_path ... --lora_r 8`.

The flags are those of `grec train --help` (BIGRec's names), also readable from `--config FILE.yaml`.
"""

import sys

from grec.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
