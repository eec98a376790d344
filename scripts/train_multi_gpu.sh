#!/usr/bin/env bash
# Data-parallel training with accelerate: plain DDP, or DeepSpeed ZeRO-2 / ZeRO-3.
#
#   scripts/train_multi_gpu.sh [ddp|zero2|zero3] [NUM_GPUS] [extra train.py flags...]
#   scripts/train_multi_gpu.sh zero2 8 --num_epochs 5
#
# Without GPUs, `scripts/train_multi_gpu.sh cpu 2` runs two CPU processes (what CI checks).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-ddp}
case "$mode" in
  ddp|zero2|zero3|cpu) ;;
  *) echo "usage: $0 [ddp|zero2|zero3|cpu] [NUM_PROCESSES] [train.py flags...]" >&2; exit 2 ;;
esac
gpus=${2:-$(python -c 'import torch; print(max(1, torch.cuda.device_count()))')}
shift $(( $# > 2 ? 2 : $# ))
config=${TRAIN_CONFIG:-configs/train/lcrec-smollm2.yaml}

# The Trainer reads the ZeRO stage from the --deepspeed JSON; accelerate only starts the processes.
gpu_launch=(--config_file configs/accelerate/multi_gpu.yaml --num_processes "$gpus")
case "$mode" in
  ddp)   launch=("${gpu_launch[@]}"); extra=(--bf16) ;;
  zero2) launch=("${gpu_launch[@]}"); extra=(--deepspeed configs/deepspeed/zero2.json --bf16) ;;
  zero3) launch=("${gpu_launch[@]}"); extra=(--deepspeed configs/deepspeed/zero3.json --bf16) ;;
  cpu)   launch=(--config_file configs/accelerate/cpu_2proc.yaml --num_processes "$gpus"); extra=() ;;
esac

# MAIN_PROCESS_PORT picks the rendezvous port (two runs on one machine need different ones).
if [[ -n "${MAIN_PROCESS_PORT:-}" ]]; then
  launch+=(--main_process_port "$MAIN_PROCESS_PORT")
fi

exec accelerate launch "${launch[@]}" train.py --config "$config" "${extra[@]}" "$@"
