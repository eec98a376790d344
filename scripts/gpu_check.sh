#!/usr/bin/env bash
# What a GPU must show, in one call (about 8 minutes on one GPU): SmolLM2-135M-Instruct LoRA with SID
# tokens on MovieLens-100K records, trained
#   1. in fp32 and in bf16 (tokens/s and peak memory of each),
#   2. in bf16 with --gradient_checkpointing (peak memory against 1.),
#   3. with --save_steps: killed mid-epoch, resumed, and compared with the uninterrupted run,
#   4. as QLoRA (--load_in_4bit; installs bitsandbytes from $WHEELS when given, else from the index),
# and prints one table of figures (also written to $OUT/gpu_check.md, or outputs/gpu_check/figures.md).
#
#   scripts/gpu_check.sh                      # on a machine with a CUDA GPU and `make install` done
#   GPU_CHECK_TINY=1 scripts/gpu_check.sh     # the same plumbing on a CPU in about two minutes (no figures)
#   BASE_MODEL=HuggingFaceTB/SmolLM2-135M-Instruct scripts/gpu_check.sh   # another base (hub name or folder)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
[[ -x $python ]] || python=python3
base=${BASE_MODEL:-smollm2}
work=${WORK:-outputs/gpu_check}
report=${OUT:+$OUT/gpu_check.md}
report=${report:-$work/figures.md}
mkdir -p "$work" "$(dirname "$report")"

if [[ -n ${GPU_CHECK_TINY:-} ]]; then
  sample=64 epochs=1 save=2 kill_after=2 precision=() device_note="CPU plumbing run (no figures)"
else
  sample=2048 epochs=1 save=8 kill_after=24 precision=(--bf16) device_note=$("$python" -c 'import torch; print(torch.cuda.get_device_name(0))')
fi

grec() { "$python" -m grec "$@"; }
grec prepare --dataset ml-100k --out "$work/data" >/dev/null
grec index --data "$work/data" --out "$work/sid" >/dev/null
grec records --data "$work/data" --sid "$work/sid" --out "$work/records" --max_history 10 >/dev/null

train() {  # train NAME [flags...]: one LoRA run (a fresh one unless FRESH=0); prints its seconds
  local name=$1; shift
  local start=$SECONDS
  [[ ${FRESH:-1} == 0 ]] || rm -rf "${work:?}/runs/$name"
  "$python" train.py --base_model "$base" --sid "$work/sid" \
    --train_data_path "[$work/records/train.json]" --val_data_path "$work/records/valid.json" --val_sample 64 \
    --output_dir "$work/runs/$name" --sample "$sample" --num_epochs "$epochs" \
    --batch_size 16 --micro_batch_size 8 --cutoff_len 256 --learning_rate 5e-4 \
    --lora_target_modules "[q_proj,k_proj,v_proj,o_proj]" --seed 0 "$@" >"$work/$name.log" 2>&1
  echo $((SECONDS - start))
}

figure() {  # figure NAME SECONDS: a table row from the run's training_state.json
  "$python" - "$work/runs/$1/training_state.json" "$2" "$1" <<'EOF'
import json, sys
state = json.load(open(sys.argv[1]))
memory = state.get("peak_gpu_memory_gb")
print(f"| {sys.argv[3]} | {sys.argv[2]} s | {state['global_step']} | {state['best_metric']:.4f} | "
      f"{'-' if memory is None else f'{memory:.2f} GiB'} |")
EOF
}

rows=()
s=$(train fp32); rows+=("$(figure fp32 "$s")")
if [[ ${#precision[@]} -gt 0 ]]; then
  s=$(train bf16 "${precision[@]}"); rows+=("$(figure bf16 "$s")")
fi
s=$(train checkpointing "${precision[@]}" --gradient_checkpointing); rows+=("$(figure checkpointing "$s")")

# mid-epoch kill and resume against an uninterrupted run with the same --save_steps
s=$(train steps "${precision[@]}" --save_steps "$save"); rows+=("$(figure steps "$s")")
rm -rf "${work:?}/runs/killed"
"$python" train.py --base_model "$base" --sid "$work/sid" --train_data_path "[$work/records/train.json]" \
  --val_data_path "$work/records/valid.json" --val_sample 64 --output_dir "$work/runs/killed" \
  --sample "$sample" --num_epochs "$epochs" --batch_size 16 --micro_batch_size 8 --cutoff_len 256 \
  --learning_rate 5e-4 --lora_target_modules "[q_proj,k_proj,v_proj,o_proj]" --seed 0 "${precision[@]}" \
  --save_steps "$save" >"$work/killed.log" 2>&1 &
pid=$!
while ! ls -d "$work/runs/killed/checkpoint-$kill_after" >/dev/null 2>&1 && kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
s=$(FRESH=0 train killed "${precision[@]}" --save_steps "$save" --resume_from_checkpoint auto)
"$python" - "$work/runs" <<'EOF'
import json, sys
from pathlib import Path
runs = Path(sys.argv[1])
whole, resumed = (json.loads((runs / n / "log.json").read_text()) for n in ("steps", "killed"))
gap = max(abs(a["valid_loss"] - b["valid_loss"]) for a, b in zip(whole, resumed))
print(f"save_steps resume: {len(resumed)} save points, largest valid-loss gap to the uninterrupted run {gap:.2e}")
EOF

if [[ -z ${GPU_CHECK_TINY:-} ]]; then
  "$python" -c "import bitsandbytes" 2>/dev/null || "$python" -m pip install -q ${WHEELS:+--no-index --find-links "$WHEELS"} bitsandbytes
  s=$(train qlora "${precision[@]}" --load_in_4bit); rows+=("$(figure qlora "$s")")
fi

{
  echo "# scripts/gpu_check.sh on $device_note, $(date -u +%Y-%m-%d)"
  echo
  echo "| run | wall | steps | best valid loss | peak GPU memory |"
  echo "|---|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
} | tee "$report"
