"""``TrainConfig``: every flag of ``train.py`` / ``grec train`` (BIGRec's names where they exist)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.fields import extendable, neutral, unrecorded
from grec.base.files import SID_MAP
from grec.base.io import check_output
from grec.training.arguments import check_trainer_args
from grec.training.flags import RunFlags

FINETUNES = ("lora", "full")
MODEL_TYPES = ("auto", "causal", "seq2seq")


@dataclass
class TrainConfig(RunFlags):
    """grec train: fine-tune a language model to generate the next item (LoRA or full).

    Reads alpaca-style records (grec records); writes best/, last/, Trainer checkpoints, log.json,
    loss.png and training_state.json to --output_dir. Run under `accelerate launch train.py ...`
    for data-parallel training. Example:
    accelerate launch train.py --base_model MODEL --train_data_path "[data/ml-100k/records/sid/train.json]"
    --val_data_path data/ml-100k/records/sid/valid.json --sid data/ml-100k/sid --output_dir outputs/lcrec
    The optimiser, LoRA, validation and run flags that grec align shares come from grec.training.flags.

    Args:
        base_model: a Hugging Face model folder, a hub name, a .gguf file (converted once and cached), or smollm2 (the packaged SmolLM2-135M-Instruct).
        base_model_id: the base model's name to record in a LoRA checkpoint's adapter_config.json (a hub id such as HuggingFaceTB/SmolLM2-135M-Instruct, or a path), so that best/ loads with peft's AutoPeftModel classes on another machine; default: --base_model as given (for a .gguf file, its converted folder in the grec cache, which only this machine has).
        train_data_path: one or more records files (JSON lists); several files = multi-domain training.
        val_data_path: one or more records files for the validation loss each epoch; with several (multi-domain, BIGRec's "[a.json, b.json]"), log.json has the loss over all of them (valid_loss, which picks best/) and per file (valid_loss_<folder or file name>).
        output_dir: where checkpoints, best/, last/ and logs go.
        finetune: lora (adapters; new SID token rows trained too) or full (every weight).
        from_scratch: a model config JSON (e.g. configs/models/tiger_t5.json): build the model from it with random weights instead of loading --base_model's weights; --base_model then only supplies the tokenizer. Implies --finetune full.
        train_on_inputs: also learn to predict the prompt tokens (default: only the response is in the loss).
        group_by_length: batch examples of similar length together (less padding).
        model_type: causal, seq2seq or auto (from the model config).
        sid: a folder written by grec index: its tokens are added to the tokenizer and model before LoRA.
        init: how new SID token rows start: mean (of existing rows), text (mean of item title token embeddings), or spread (text, each level centred and scaled to the spread of ordinary token rows, so codes start distinct).
        eval_metric: what picks best/: loss (validation loss) or ndcg (NDCG@10 of SID-constrained beam search on the validation records; needs --sid).
        fp16: train in float16 mixed precision.
        deepspeed: a DeepSpeed config file (e.g. configs/deepspeed/zero2.json).
        attn_implementation: the attention kernel to load the model with (eager, sdpa, flash_attention_2, ...); default: transformers' choice.
        gradient_checkpointing: recompute activations in the backward pass instead of keeping them (less memory, about a third more compute).
        max_steps: stop after this many optimizer steps (overrides --num_epochs); -1: train --num_epochs epochs.
        save_steps: also checkpoint every this many optimizer steps (and at the last step), mid-epoch: a killed run resumes from there exactly; best/ and last/, log.json and training_state.json are then kept per save point (step) instead of per epoch; 0: once per epoch.
        save_total_limit: keep at most this many checkpoint-N folders (the oldest are deleted; best/ and last/ stay); default all.
        eval_steps: with --save_steps, validate every this many steps (default: at every save).
        load_in_4bit: load the base model's weights in 4 bits (QLoRA: LoRA adapters trained in higher precision on top); needs a CUDA GPU and the bitsandbytes package.
        trainer_args: any other transformers.TrainingArguments fields as a mapping, e.g. '{dataloader_num_workers: 4, optim: adamw_torch_fused}' (checked against TrainingArguments; fields grec sets from its own flags are refused).
        debug_port: rank 0 waits for a debugpy client on this port before training (0: off).
    """

    base_model: str = ""
    base_model_id: str | None = None
    train_data_path: list[str] | None = None
    val_data_path: list[str] | None = None
    output_dir: str = unrecorded("outputs/train")
    batch_size: int = 128
    micro_batch_size: int = 4
    num_epochs: int = extendable(3)
    learning_rate: float = 3e-4
    cutoff_len: int = 512
    finetune: str = "lora"
    from_scratch: str | None = None
    train_on_inputs: bool = False
    group_by_length: bool = False
    model_type: str = "auto"
    sid: str | None = None
    init: str = "mean"
    eval_metric: str = "loss"
    fp16: bool = False
    deepspeed: str | None = None
    attn_implementation: str | None = None
    gradient_checkpointing: bool = False
    max_steps: int = -1
    save_steps: int = 0
    save_total_limit: int | None = None
    eval_steps: int = 0
    load_in_4bit: bool = False
    trainer_args: dict | None = None
    debug_port: int = neutral(0)

    def __post_init__(self) -> None:
        self.train_data_path = _paths(self.train_data_path) or []
        self.val_data_path = _paths(self.val_data_path)
        self.lora_target_modules = list(self.lora_target_modules or ["q_proj", "v_proj"])
        check_output(self.output_dir, "--output_dir")
        if not self.base_model:
            raise GrecError("--base_model: required (a model folder, a hub name or a .gguf file)")
        if not self.train_data_path:
            raise GrecError("--train_data_path: required (one or more records files from grec records)")
        for path in [*self.train_data_path, *(self.val_data_path or [])]:
            if not Path(path).is_file():
                raise GrecError(f"{path}: records file not found; run grec records first or fix the path")
        if self.sid is not None and not (Path(self.sid) / SID_MAP).is_file():
            raise GrecError(f"{Path(self.sid) / SID_MAP}: file not found; --sid takes a grec index folder")
        if self.deepspeed is not None and not Path(self.deepspeed).is_file():
            raise GrecError(f"{self.deepspeed}: DeepSpeed config not found (given as --deepspeed)")
        if self.from_scratch is not None:
            if not Path(self.from_scratch).is_file():
                raise GrecError(f"{self.from_scratch}: model config not found (given as --from_scratch)")
            self.finetune = "full"
        if self.finetune not in FINETUNES:
            raise GrecError(f"--finetune: expected one of {', '.join(FINETUNES)}, got {self.finetune!r}")
        if self.model_type not in MODEL_TYPES:
            raise GrecError(f"--model_type: expected one of {', '.join(MODEL_TYPES)}, got {self.model_type!r}")
        if self.eval_metric not in ("loss", "ndcg"):
            raise GrecError(f"--eval_metric: expected loss or ndcg, got {self.eval_metric!r}")
        if self.eval_metric == "ndcg" and (self.sid is None or self.val_data_path is None):
            raise GrecError(
                "--eval_metric ndcg: needs --sid and --val_data_path (it ranks the validation users' items)"
            )
        if self.bf16 and self.fp16:
            raise GrecError("--bf16 and --fp16: choose one")
        self._check_gpu_flags()
        self.check_run_flags()

    def _check_gpu_flags(self) -> None:
        if self.max_steps == 0 or self.max_steps < -1:
            raise GrecError("--max_steps: give a positive number of optimizer steps, or -1 for --num_epochs")
        for name in ("save_steps", "eval_steps"):
            if getattr(self, name) < 0:
                raise GrecError(f"--{name}: must be 0 or more")
        if self.eval_steps and not self.save_steps:
            raise GrecError("--eval_steps: applies with --save_steps (without it validation runs once per epoch)")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise GrecError("--save_total_limit: keep at least 1 checkpoint (or leave it unset to keep all)")
        if self.load_in_4bit:
            import importlib.util

            if self.finetune != "lora":
                raise GrecError("--load_in_4bit: trains LoRA adapters on a 4-bit base (QLoRA); needs --finetune lora")
            if importlib.util.find_spec("bitsandbytes") is None:
                raise GrecError(
                    "--load_in_4bit: needs the bitsandbytes package (pip install bitsandbytes) and a CUDA GPU"
                )
        check_trainer_args(self.trainer_args)


def _paths(value) -> list[str] | None:
    """One path or several as a list (Python callers may give a single string)."""
    if not value:
        return None
    return [str(value)] if isinstance(value, (str, Path)) else [str(v) for v in value]
