"""TaskConfig: the flags of ``grec train-task``, shared by every registered task."""

from __future__ import annotations

from dataclasses import dataclass, field

from grec.base.errors import GrecError
from grec.base.fields import extendable, neutral, unrecorded
from grec.base.io import check_output
from grec.training.arguments import accumulation_steps
from grec.training.flags import check_schedule


@dataclass
class TaskConfig:
    """grec train-task: train any registered task (seqrec, ctr, text_cls, image_cls, lm_pretrain, ...) with the shared trainer.

    The same Hugging Face Trainer, checkpoint layout (best/, last/, training_state.json,
    log.json, loss.png), resume and tracking as `grec train`; runs data-parallel under
    `accelerate launch`. `grec list` shows the registered tasks, models and datasets.
    Example: grec train-task --config configs/tasks/ctr_ml100k_deepfm.yaml --output_dir outputs/deepfm

    Args:
        task: registered task name (seqrec, ctr, text_cls, image_cls, lm_pretrain).
        data: the task's input: a prepared folder (seqrec), a dataset name or file (ctr, text_cls), an image folder or "digits" (image_cls), text/JSON-lines files or a prepared folder's item texts (lm_pretrain); empty for the task's packaged default.
        model: registered model name; empty for the task's default.
        base_model: a pretrained model to start from, for models that take one (lm_pretrain: continued pretraining of a model folder, hub name, .gguf file or "smollm2").
        model_args: the model's settings as a mapping, e.g. '{embed_dim: 16, hidden: [256, 128]}'.
        data_args: the dataset's settings as a mapping (task-specific; unknown keys are refused with the known ones listed).
        output_dir: where best/, last/, checkpoints, logs and test results go.
        num_epochs: passes over the training data.
        batch_size: examples per optimiser step over all processes.
        micro_batch_size: examples per forward pass on one process (gradient accumulation = batch_size / (micro_batch_size x processes)); 0: no accumulation.
        eval_batch_size: examples per step when scoring validation and test data.
        learning_rate: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        warmup_ratio: fraction of steps spent warming the learning rate up.
        lr_scheduler: transformers scheduler name (constant, linear, cosine, ...).
        early_stopping_patience: stop after this many epochs without a better validation metric (0: never).
        resume_from_checkpoint: a checkpoint folder, or "auto" for the newest complete one in --output_dir.
        overwrite: replace a run in --output_dir made with other settings (without it such a folder is refused).
        init_from: a finished run's best/ or last/ to continue from on new data (incremental training: vocabularies grow, old rows are kept).
        plugin: Python files or modules to import first, so the models/datasets/tasks they register can be named.
        seed: seed for initialisation, shuffling and sampling.
        report_to: none, tensorboard or wandb.
        logging_steps: log the training loss every this many steps.
        num_workers: data-loader worker processes.
        bf16: train in bfloat16 mixed precision (GPU).
        keep_cpu_memory: on a CPU, keep freed memory in the process between steps instead of returning it to the system each time (glibc): faster steps, higher peak memory.
    """

    task: str = "seqrec"
    data: str | None = None
    model: str | None = None
    base_model: str | None = None
    model_args: dict = field(default_factory=dict)
    data_args: dict = field(default_factory=dict)
    output_dir: str = unrecorded("outputs/task")
    num_epochs: int = extendable(10)
    batch_size: int = 256
    micro_batch_size: int = 0
    eval_batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    lr_scheduler: str = "constant"
    early_stopping_patience: int = 0
    resume_from_checkpoint: str | None = neutral(None)
    overwrite: bool = neutral(False)
    init_from: str | None = None
    plugin: list[str] = field(default_factory=list)
    seed: int = 42
    report_to: str = neutral("none")
    logging_steps: int = 50
    num_workers: int = 0
    bf16: bool = False
    keep_cpu_memory: bool = neutral(True)

    def accumulation_steps(self, world: int) -> int:
        """Gradient accumulation steps that keep the global batch at ``batch_size`` over ``world`` processes."""
        return accumulation_steps(self.batch_size, self.per_device_batch(world), world)

    def per_device_batch(self, world: int) -> int:
        """Examples per forward pass on one process: ``micro_batch_size``, or the global batch split evenly."""
        return self.micro_batch_size or self.batch_size // world

    def __post_init__(self) -> None:
        check_output(self.output_dir, "--output_dir")
        for name in ("num_epochs", "batch_size", "eval_batch_size", "logging_steps"):
            if getattr(self, name) < 1:
                raise GrecError(f"--{name}: must be at least 1, got {getattr(self, name)}")
        if self.micro_batch_size < 0:
            raise GrecError(f"--micro_batch_size: must be 0 (no accumulation) or positive, got {self.micro_batch_size}")
        check_schedule(self)  # the same checks as grec train's
