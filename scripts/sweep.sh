#!/usr/bin/env bash
# Run a recipe over a grid of seeds x learning rates x LoRA dropouts, then score every run.
#
#   scripts/sweep.sh --recipe tiger --seeds "0 1 2" --lrs "1e-3 2e-3" [--dropouts "0.05 0.1"]
#                    [--data data/ml-100k] [--out outputs/sweep-tiger] [--parallel 2]
#                    [--stage train|train-task] [--overrides '{infer: {sample: 100}}']
#                    [--baseline popularity]
#
# Each run goes to OUT/seed<S>_lr<L>[_do<D>] and is a plain `grec run`, so a finished run is
# skipped stage by stage and an interrupted sweep resumes where it stopped. At the end,
# `python eval/evaluate.py --input_dir OUT --seeds` prints every result file and a
# mean +/- std table per setting across seeds (OUT/sweep.md); with --baseline NAME (a result file
# or setting) each setting is also tested against it record by record (paired; * when significant).
set -euo pipefail
cd "$(dirname "$0")/.."

recipe=tiger; data=data/ml-100k; out=""; seeds="0 1 2"; lrs=""; dropouts=""; parallel=1; stage=""; overrides="{}"
baseline=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --recipe) recipe=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --lrs) lrs=$2; shift 2 ;;
    --dropouts) dropouts=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --overrides) overrides=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "sweep.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
out=${out:-outputs/sweep-$recipe}
if [[ -z "$stage" ]]; then
  if [[ "$recipe" == sasrec ]]; then stage=train-task; else stage=train; fi
fi
grec=${GREC:-grec}
command -v "$grec" >/dev/null || grec=.venv/bin/grec
py=${PYTHON:-python3}
[[ -x .venv/bin/python && -z "${PYTHON:-}" ]] && py=.venv/bin/python
read -ra seed_list <<< "$seeds"
read -ra lr_list <<< "$lrs"
read -ra dropout_list <<< "$dropouts"
(( ${#lr_list[@]} )) || lr_list=("")
(( ${#dropout_list[@]} )) || dropout_list=("")

# One run: its folder name, then grec run with the grid values merged into the training stage.
run_one() {
  local seed=$1 lr=$2 dropout=$3 name flags
  name="seed${seed}"
  flags="seed: $seed"
  if [[ -n "$lr" ]]; then name+="_lr${lr}"; flags+=", learning_rate: $lr"; fi
  if [[ -n "$dropout" ]]; then name+="_do${dropout}"; flags+=", lora_dropout: $dropout"; fi
  echo "sweep: $name"
  "$grec" run --recipe "$recipe" --data "$data" --out "$out/$name" \
    --overrides "$("$py" -c 'import sys, yaml; o = yaml.safe_load(sys.argv[1]) or {}; s = o.setdefault(sys.argv[2], {}); s.update(yaml.safe_load("{" + sys.argv[3] + "}")); print(yaml.safe_dump(o, default_flow_style=True).strip())' "$overrides" "$stage" "$flags")" \
    > "$out/$name.log" 2>&1 || { echo "sweep: $name failed, see $out/$name.log" >&2; return 1; }
}

mkdir -p "$out"
failed=0
running=0
for seed in "${seed_list[@]}"; do
  for lr in "${lr_list[@]}"; do
    for dropout in "${dropout_list[@]}"; do
      if (( parallel > 1 )); then
        run_one "$seed" "$lr" "$dropout" &
        running=$((running + 1))
        if (( running >= parallel )); then
          wait -n || failed=1
          running=$((running - 1))
        fi
      else
        run_one "$seed" "$lr" "$dropout" || failed=1
      fi
    done
  done
done
while (( running > 0 )); do
  wait -n || failed=1
  running=$((running - 1))
done

"$py" eval/evaluate.py --input_dir "$out" --seeds --topk "[5,10,20]" ${baseline:+--baseline "$baseline"}
exit "$failed"
