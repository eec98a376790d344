#!/usr/bin/env bash
# Does preference / RL alignment improve sidlm on ML-100K? One sidlm SFT checkpoint (grec run --recipe
# sidlm, seed 42), then each method at its best validation setting (docs/align.md) with align seeds
# 0 1 2, each aligned last/ ranked on all test users, and one paired table against the SFT model:
# mean +/- std over the seeds, the per-user difference with its 95% interval, coverage@10.
#   bash scripts/align_seeds.sh [DATA] [OUT]     # about 75 minutes on a 2-core CPU
# Figures: docs/align.md ("Three seeds on test") and docs/bench/archive/quality.json (rows sidlm+dpo, +sdpo, +grpo).
set -euo pipefail
DATA=${1:-data/ml-100k}
OUT=${2:-outputs/align-seeds}
GREC=${GREC:-grec}
METHODS=${METHODS:-"dpo sdpo grpo"}
SEEDS=${SEEDS:-"0 1 2"}

settings() {
  case $1 in
    dpo) echo "--method dpo --negatives popular --num_negatives 1 --beta 0.5 --learning_rate 2e-5 --sample 3000" ;;
    sdpo) echo "--method sdpo --negatives hard,popular --num_negatives 3 --beta 1.0 --sft_weight 0.5 --learning_rate 2e-5 --sample 3000" ;;
    grpo) echo "--method grpo --num_generations 8 --reward rank_aware --kl_coef 0.04 --learning_rate 1e-5 --sample 800" ;;
    *) echo "align_seeds.sh: unknown method $1 (dpo, sdpo, grpo)" >&2; return 2 ;;
  esac
}

[ -f "$OUT/sft/results/sidlm.jsonl" ] || "$GREC" run --recipe sidlm --data "$DATA" --out "$OUT/sft"
[ -f "$OUT/pairs/train.json" ] || "$GREC" records --data "$DATA" --sid "$DATA/sid-tiger" --style sid \
  --prompt plain --tasks seqrec --max_history 50 --out "$OUT/pairs"
mkdir -p "$OUT/results"
cp "$OUT/sft/results/sidlm.jsonl" "$OUT/results/sidlm.jsonl"
for seed in $SEEDS; do
  for method in $METHODS; do
    result="$OUT/results/sidlm+$method-seed$seed.jsonl"
    [ -f "$result" ] && continue
    started=$(date +%s)
    # shellcheck disable=SC2046  # the settings are flags, split on purpose
    "$GREC" align --checkpoint "$OUT/sft/train/best" --train_data_path "$OUT/pairs/train.json" \
      --val_data_path "$OUT/sft/records/valid.json" --val_sample 500 --batch_size 32 --micro_batch_size 16 \
      --num_epochs 1 --cutoff_len 256 --score_start false $(settings "$method") --seed "$seed" \
      --output_dir "$OUT/align/$method-seed$seed"
    "$GREC" infer --checkpoint "$OUT/align/$method-seed$seed/last" --test_data_path "$OUT/sft/records/test.json" \
      --result_json_data "$result" --num_beams 20 --batch_size 64 --cutoff_len 256 --exclude_history true
    echo "$method seed $seed: $(($(date +%s) - started)) s (align + infer)" | tee -a "$OUT/minutes.log"
  done
done
"$GREC" evaluate --input_dir "$OUT/results" --topk 5,10,20 --items "$DATA/items.jsonl" --baseline sidlm --seeds true
