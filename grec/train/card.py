"""The model card ``grec export`` writes beside a merged model: what it is, on which data and SID map,
trained how, and how well it did (README.md with the hub's metadata header)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from grec.base.files import RECORDS_SETTINGS, SETTINGS, SID_MAP, TRAINING_STATE
from grec.base.io import read_json
from grec.base.version import __version__


def _sid_lines(folder: Path, arguments: dict) -> list[str]:
    if not (folder / SID_MAP).is_file():
        return ["| semantic IDs | none (the model generates titles) |"]
    sid_map = read_json(folder / SID_MAP)
    digest = hashlib.sha256((folder / SID_MAP).read_bytes()).hexdigest()[:16]
    lengths = sorted({len(codes) for codes in sid_map.values()})
    method = ""
    settings = Path(arguments.get("sid") or "") / SETTINGS
    if arguments.get("sid") and settings.is_file():
        made = read_json(settings).get("settings", {})
        method = f", {made.get('method')} {made.get('levels')} x {made.get('codebook_size')}, dedup {made.get('dedup')}"
    return [
        f"| semantic IDs | {len(sid_map):,} items, {'/'.join(map(str, lengths))} tokens per item{method} |",
        f"| SID map | `sid_map.json`, sha256 {digest}... |",
    ]


def _metrics_table(state: dict, metrics: dict | None) -> list[str]:
    lines = ["## Metrics", ""]
    if state.get("best_metric") is not None:
        where = f"step {state['best_step']}" if state.get("best_step") else f"epoch {state.get('best_epoch')}"
        lines += [f"Validation: best {state.get('metric')} {state['best_metric']:.4f} at {where}.", ""]
    if metrics:
        rows = next(iter(metrics.values()))
        keys = [k for k in rows if k.split("@")[0] in ("HR", "NDCG", "MRR")]
        lines += ["| result file | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
        for name, row in metrics.items():
            lines.append(f"| {name} | " + " | ".join(f"{row[k]:.4f}" for k in keys) + " |")
        lines.append("")
    elif state.get("best_metric") is None:
        lines += ["No metrics recorded: pass `grec export --metrics metrics.json` (written by `grec evaluate`).", ""]
    return lines


def model_card(folder: Path, name: str, base_model: str, metrics: dict | None = None) -> str:
    """README.md text for an exported model folder that holds ``training_state.json`` (and ``records.json``,
    ``sid_map.json`` where the run had them); ``metrics`` is a ``grec evaluate`` metrics.json mapping."""
    state = read_json(folder / TRAINING_STATE)
    arguments = state.get("arguments", {})
    records = read_json(folder / RECORDS_SETTINGS) if (folder / RECORDS_SETTINGS).is_file() else {}
    if arguments.get("from_scratch"):
        how = f"from scratch ({Path(arguments['from_scratch']).name})"
    elif arguments.get("finetune") == "lora":
        how = (
            f"LoRA r={arguments.get('lora_r')} alpha={arguments.get('lora_alpha')} on "
            f"{', '.join(arguments.get('lora_target_modules') or [])}, merged"
        )
    else:
        how = "full fine-tuning"
    prompt = ", ".join(f"{k} {records[k]}" for k in ("style", "prompt", "max_history") if k in records) or "unknown"
    training = (
        f"{state.get('epoch')} epochs ({state.get('global_step')} steps), batch {arguments.get('batch_size')}, "
        f"learning rate {arguments.get('learning_rate')}, cutoff {arguments.get('cutoff_len')} tokens, "
        f"seed {arguments.get('seed')}"
    )
    header = ["---", "library_name: transformers", f"base_model: {json.dumps(base_model)}"]
    header += ["tags: [grec, recommendation, generative-recommendation]", "---", ""]
    body = [
        f"# {name}",
        "",
        "A generative recommender trained with [grec](https://pypi.org/project/grec-llm/): it reads a user's "
        "history and generates the next item, constrained to the catalog.",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{base_model}` |",
        f"| training | {how}; {training} |",
        f"| records | {', '.join(map(str, arguments.get('train_data_path') or []))} ({prompt}) |",
        *_sid_lines(folder, arguments),
        f"| versions | grec {__version__}, "
        + ", ".join(f"{k} {v}" for k, v in state.get("versions", {}).items() if k != "grec")
        + " |",
        "",
        *_metrics_table(state, metrics),
        "## Use",
        "",
        "```python",
        "import grec",
        "",
        f'rec = grec.Recommender.from_pretrained("{name}")  # this folder',
        'print(rec.recommend(["item id", "item id"], k=10))  # a history, oldest first',
        "```",
        "",
    ]
    return "\n".join(header + body)
