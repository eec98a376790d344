"""``AlignConfig``: every flag of ``align.py`` / ``grec align``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.fields import check_applicable, only, unrecorded
from grec.base.io import check_output
from grec.training.flags import RunFlags
from grec.training.grpo import REWARDS
from grec.training.preference import METHODS as PREFERENCE_METHODS

METHODS = (*PREFERENCE_METHODS, "grpo")

SOURCES = ("hard", "popular", "uniform")


def negative_counts(sources: str | list[str], total: int) -> dict[str, int]:
    """``total`` negatives split between the named sources as evenly as possible, earlier ones first."""
    names = [s.strip() for s in (sources.split(",") if isinstance(sources, str) else sources) if s.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if not names or unknown or len(set(names)) < len(names):
        raise GrecError(
            f"--negatives: expected a comma list of distinct sources among {', '.join(SOURCES)} (e.g. hard,popular), "
            f"got {sources!r}"
        )
    return {name: total // len(names) + (k < total % len(names)) for k, name in enumerate(names)}


@dataclass
class AlignConfig(RunFlags):
    """grec align: preference and reinforcement post-training of a grec SFT checkpoint (DPO, S-DPO, GRPO).

    Starts from a best/ or last/ folder of grec train (causal or seq2seq, LoRA or full) and writes
    best/ and last/ that grec infer and the Python API use unchanged, plus pairs.jsonl (every
    example's negatives and reference log-probabilities), log.json, loss.png and
    training_state.json. The reference model is the starting checkpoint itself, frozen: its
    log-probabilities are computed once before training. A LoRA checkpoint is merged into its base
    first (saved as <output_dir>/base) and a fresh adapter is trained on top. Run under
    `accelerate launch align.py ...` for data-parallel training. Example:
    grec align --checkpoint outputs/sidlm/train/best --train_data_path outputs/sidlm/pairs/train.json
    --val_data_path outputs/sidlm/records/valid.json --method sdpo --num_negatives 3 --output_dir outputs/sidlm/align
    The optimiser, LoRA, validation and run flags that grec train shares come from grec.training.flags.

    Args:
        checkpoint: the SFT checkpoint to start from (a best/ or last/ folder of grec train).
        train_data_path: next-item records (grec records --tasks seqrec, the checkpoint's prompt style): each gives a prompt and its chosen item.
        val_data_path: next-item validation records: NDCG@10 of constrained beam search on them picks best/ each epoch.
        output_dir: where best/, last/, Trainer checkpoints, pairs.jsonl and logs go.
        method: dpo (each negative against the chosen item, averaged), sdpo (the chosen item against all negatives in one softmax, S-DPO) or grpo (rollouts from the policy's SID-constrained beam, rewarded and compared within each prompt's group; docs/align.md).
        beta: dpo and sdpo: strength of the pull towards the reference (larger: stay closer).
        sft_weight: dpo and sdpo: weight of the chosen item's negative log-likelihood added to the preference loss (RPO): keeps the target's own probability from falling while the margin grows; 0 for the plain loss.
        num_generations: grpo: items per prompt (rollouts), history excluded.
        rollout: grpo: beam (the policy's top new items by constrained beam search: distinct, not samples of the policy) or sample (draws from the policy restricted to the catalog, at --temperature; items may repeat).
        temperature: grpo with --rollout sample: sampling temperature.
        reward: grpo: hit (1 for the target), ndcg (1/log2(rank+2) for the target), rank_aware (the target 1, wrong items a penalty by their rank, the group's penalties summing to -1) or collab (the target 1, wrong items their co-occurrence similarity to the user's last item in the training records).
        kl_coef: grpo: weight of the KL penalty to the reference.
        clip: grpo: ratio clip of the policy-gradient objective.
        num_negatives: negatives per example.
        negatives: where negatives come from, the count split evenly among them: hard (the starting model's own constrained beam, its top items that are not the user's), popular (sampled by training popularity), uniform (any catalog item). Never the chosen item, nor any item of the user's training or validation records (history, earlier or later).
        hard_beams: beams of the search that mines hard negatives.
        lora_r: LoRA rank of the fresh adapter (LoRA checkpoints only).
        lora_target_modules: module names that get adapters; default: those the checkpoint's adapter had.
        score_start: score the starting checkpoint on the validation records before the first step and keep it as best/ (epoch 0) unless an epoch beats it: best/ is never worse on validation than the model the run started from.
    """

    checkpoint: str = ""
    train_data_path: list[str] | None = None
    val_data_path: str | None = None
    output_dir: str = unrecorded("outputs/align")
    method: str = "dpo"
    beta: float = only(0.1, method=("dpo", "sdpo"))
    sft_weight: float = only(0.0, method=("dpo", "sdpo"))
    num_generations: int = only(8, method=("grpo",))
    rollout: str = only("beam", method=("grpo",))
    temperature: float = only(1.0, method=("grpo",), rollout=("sample",))
    reward: str = only("rank_aware", method=("grpo",))
    kl_coef: float = only(0.04, method=("grpo",))
    clip: float = only(0.2, method=("grpo",))
    num_negatives: int = only(1, method=("dpo", "sdpo"))
    negatives: list[str] | str = only("hard", method=("dpo", "sdpo"))
    hard_beams: int = only(20, method=("dpo", "sdpo"))
    score_start: bool = True

    def __post_init__(self) -> None:
        check_output(self.output_dir, "--output_dir")
        if not self.checkpoint:
            raise GrecError("--checkpoint: required (a best/ or last/ folder that grec train wrote)")
        if isinstance(self.train_data_path, (str, Path)):
            self.train_data_path = [str(self.train_data_path)]
        if not self.train_data_path:
            raise GrecError("--train_data_path: required (next-item records: grec records --tasks seqrec)")
        for path in [*self.train_data_path, *([self.val_data_path] if self.val_data_path else [])]:
            if not Path(path).is_file():
                raise GrecError(f"{path}: records file not found; run grec records first or fix the path")
        if self.method not in METHODS:
            raise GrecError(f"--method: expected one of {', '.join(METHODS)}, got {self.method!r}")
        if self.reward not in REWARDS:
            raise GrecError(f"--reward: expected one of {', '.join(REWARDS)}, got {self.reward!r}")
        if self.rollout not in ("beam", "sample"):
            raise GrecError(f"--rollout: expected beam or sample, got {self.rollout!r}")
        if self.temperature <= 0:
            raise GrecError(f"--temperature: must be positive, got {self.temperature}")
        if self.num_generations < 2:
            raise GrecError("--num_generations: at least 2 (advantages compare the items of a group)")
        for name in ("num_negatives", "hard_beams"):
            if getattr(self, name) < 1:
                raise GrecError(f"--{name}: must be at least 1")
        if self.sft_weight < 0:
            raise GrecError(f"--sft_weight: must be 0 or positive, got {self.sft_weight}")
        if self.beta <= 0:
            raise GrecError(f"--beta: must be positive, got {self.beta}")
        self.check_run_flags()
        self.counts = negative_counts(self.negatives, self.num_negatives)
        self.negatives = ",".join(self.counts)  # one spelling whether given as text or a list
        check_applicable(self)  # a flag of another method would be accepted and ignored
