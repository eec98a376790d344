"""Fine-tune a recommender: `accelerate launch train.py --base_model ... --train_data_path ... --lora_r 8`.

The flags are those of `grec train --help` (BIGRec's names), also readable from `--config FILE.yaml`.
With `--task NAME` (seqrec, ctr, text_cls, image_cls, lm_pretrain) it runs `grec train-task` instead.
"""

import sys

from grec.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    command = "train-task" if any(a == "--task" or a.startswith("--task=") for a in args) else "train"
    sys.exit(main([command, *args]))
