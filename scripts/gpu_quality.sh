#!/usr/bin/env bash
# The LLM recipes on one GPU, one command (about 8 minutes on one H200), MovieLens-100K, every test
# user, history excluded, popularity on the same users:
#   1. lcrec-seq: SmolLM2-135M-Instruct + LoRA + text-initialised SID rows on whole histories
#      (4 epochs, about 50 s each on an H200),
#   2. bigrec: SmolLM2 + LoRA on 5,000 title records (2 epochs), ranked by trie-constrained title
#      beams and by grounded free generation (BIGRec's own choice of grounding space: the LLM's
#      embeddings; popularity fused with gamma tuned on all validation users),
#   3. serving: bench/serve.py on a sidlm checkpoint (SIDLM_CHECKPOINT, when given) on the GPU.
# Each part runs under its own time cap and the next one starts whatever happened; the figures go to
# $OUT/gpu_quality.json (or outputs/gpu_quality/gpu_quality.json), with the result files, logs and
# curves in gpu_quality_files.tgz beside it.
#
#   scripts/gpu_quality.sh                        # on a machine with a CUDA GPU and `make install` done
#   GPU_QUALITY_TINY=1 scripts/gpu_quality.sh     # the same plumbing on a CPU in a few minutes (no figures)
set -uo pipefail
cd "$(dirname "$0")/.." || exit
python=${PYTHON:-.venv/bin/python}
[[ -x $python ]] || python=python3
work=${WORK:-outputs/gpu_quality}
data=$work/data
report=${OUT:-$work}/gpu_quality.json
mkdir -p "$work" "$(dirname "$report")"
grec() { "$python" -m grec "$@"; }

if [[ -n ${GPU_QUALITY_TINY:-} ]]; then
  lcrec='{train: {sample: 16, num_epochs: 1, val_sample: 4, micro_batch_size: 8, batch_size: 8}, infer: {sample: 8}}'
  bigrec='{records: {sample: 16}, train: {num_epochs: 1, val_sample: 4}, trie: {sample: 4}, grounded: {sample: 4, val_sample: 4}}'
  caps=(900 900 300) device=cpu requests=64
else
  lcrec='{train: {bf16: true, num_epochs: 4}, infer: {batch_size: 128}}'
  bigrec='{records: {sample: 5000}, train: {bf16: true, num_epochs: 2, micro_batch_size: 32}, trie: {batch_size: 32}, grounded: {batch_size: 32, val_sample: -1, encoder: ENCODER}}'
  read -r -a caps <<<"${CAPS:-240 220 60}"; device=cuda requests=1024  # seconds: lcrec-seq, bigrec, serving
fi

started=$SECONDS
timeout "${caps[0]}" "$python" -m grec run --recipe lcrec-seq --data "$data" --out "$work/lcrec-seq" --overrides "$lcrec" \
  >"$work/lcrec-seq.log" 2>&1
echo "lcrec-seq: exit $?, $((SECONDS - started)) s"
if [[ ! -f $work/lcrec-seq/results/lcrec-seq.jsonl && -d $work/lcrec-seq/train/best ]]; then  # out of time: rank with the best epoch so far
  "$python" inference.py --checkpoint "$work/lcrec-seq/train/best" --test_data_path "$work/lcrec-seq/records/test.json" \
    --result_json_data "$work/lcrec-seq/results/lcrec-seq.jsonl" --num_beams 20 --batch_size 128 --cutoff_len 256 \
    --exclude_history true >>"$work/lcrec-seq.log" 2>&1 && grec evaluate --input_dir "$work/lcrec-seq/results" --topk "[5,10,20]"
fi

# bigrec grounds in the LLM's own embedding space (BIGRec's choice; the default encoder, MiniLM, may be absent)
encoder=$("$python" -c 'from grec.lm.loading import resolve_base_model as r; print(r("smollm2"))')
started=$SECONDS
timeout "${caps[1]}" "$python" -m grec run --recipe bigrec --data "$data" --out "$work/bigrec" \
  --overrides "${bigrec//ENCODER/$encoder}" >"$work/bigrec.log" 2>&1
echo "bigrec: exit $?, $((SECONDS - started)) s"
# the same users' popularity ranking
grec evaluate --input_dir "$work/bigrec/popularity" --topk "[5,10,20]" >/dev/null 2>&1

if [[ -n ${SIDLM_CHECKPOINT:-} ]]; then
  started=$SECONDS
  timeout "${caps[2]}" "$python" bench/serve.py --checkpoint "$SIDLM_CHECKPOINT" --records "$SIDLM_RECORDS" \
    --device "$device" --requests "$requests" --max_batch 64 --out "$work/serve.json" >"$work/serve.log" 2>&1
  echo "serve: exit $?, $((SECONDS - started)) s"
fi

"$python" - "$work" "$report" <<'EOF'
import json, sys
from pathlib import Path
import torch
work, report = Path(sys.argv[1]), Path(sys.argv[2])
figures = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (plumbing run)"}
for name, folder in (("lcrec-seq", "lcrec-seq/results"), ("bigrec", "bigrec/results"), ("popularity", "bigrec/popularity")):
    if (work / folder / "metrics.json").is_file():
        figures[name] = json.loads((work / folder / "metrics.json").read_text())
for run in ("lcrec-seq", "bigrec"):
    marks = sorted((work / run / ".recipe").glob("*.json"))
    figures[f"{run}_stage_seconds"] = {m.stem: json.loads(m.read_text())["seconds"] for m in marks}
if (work / "serve.json").is_file():
    figures["serve"] = json.loads((work / "serve.json").read_text())
report.write_text(json.dumps(figures, indent=1))
print(json.dumps(figures, indent=1)[:6000])
EOF
# result files, logs and curves in one archive beside the figures (built outside $work, which it reads)
archive=$(mktemp --suffix=.tgz)
if tar -czf "$archive" --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' \
  --exclude='*.npy' --exclude=tokenizer.json --exclude='checkpoint-*' --exclude=train.json --exclude=./data \
  --exclude=gpu_quality_files.tgz -C "$work" .; then
  chmod 644 "$archive" && mv -f "$archive" "$(dirname "$report")/gpu_quality_files.tgz"
else
  rm -f "$archive"
fi
