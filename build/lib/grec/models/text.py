"""A text classifier: a Hugging Face encoder (default the packaged all-MiniLM-L6-v2), pooled, plus a linear head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from grec.base.registry import MODELS


def default_encoder() -> str:
    from grec.base.assets import minilm_dir

    return str(minilm_dir())


@MODELS.register("encoder_classifier")
class EncoderClassifier(nn.Module):
    """Args: num_labels (from the data), base_model (a HF encoder folder or hub name; default the packaged
    MiniLM), finetune (full or lora), lora_r, lora_alpha, lora_dropout, pooling (mean or cls), dropout."""

    def __init__(
        self,
        num_labels: int,
        base_model: str | None = None,
        finetune: str = "full",
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        pooling: str = "mean",
        dropout: float = 0.1,
    ):
        super().__init__()
        from transformers import AutoModel

        if finetune not in ("full", "lora") or pooling not in ("mean", "cls"):
            raise ValueError(f"finetune must be full or lora and pooling mean or cls, got {finetune!r}, {pooling!r}")
        self.encoder = AutoModel.from_pretrained(base_model or default_encoder())
        if finetune == "lora":
            from peft import LoraConfig, get_peft_model

            targets = [
                n
                for n in ("query", "value", "q_proj", "v_proj", "q", "v")
                if any(name.endswith(f".{n}") for name, _ in self.encoder.named_modules())
            ][:2]
            self.encoder = get_peft_model(
                self.encoder,
                LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=targets),
            )
        self.pooling = pooling
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask, labels=None) -> dict:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        logits = self.head(self.drop(pooled))
        if labels is None:
            return {"logits": logits}
        return {"loss": F.cross_entropy(logits, labels), "logits": logits}

    @torch.no_grad()
    def probabilities(self, input_ids, attention_mask) -> torch.Tensor:
        return self.forward(input_ids, attention_mask)["logits"].float().softmax(-1)
