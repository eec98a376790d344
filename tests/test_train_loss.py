"""The labelled-positions loss equals Hugging Face's full-logits causal-LM loss, value and gradients."""

import json

import pytest
import torch
from transformers import AutoTokenizer, DataCollatorForSeq2Seq, LlamaForCausalLM

from grec.lm.loading import apply_lora
from grec.train.data import tokenize_records
from grec.training.loss import LabelledPositions, keeps_logits_by_mask, labelled_token_loss


@pytest.fixture(scope="module")
def batch(tiny_llama_dir, ml100k_sid_records):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    examples, _ = tokenize_records(ml100k_sid_records[:6], tokenizer, seq2seq=False, cutoff_len=96)
    collate = LabelledPositions(DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100))
    return collate([{k: v for k, v in e.items() if k != "length"} for e in examples])


@pytest.fixture(scope="module")
def ml100k_sid_records(ml100k, ml100k_sid, tmp_path_factory):
    from grec.records import RecordsConfig, build_records

    out = tmp_path_factory.mktemp("loss-records")
    build_records(
        RecordsConfig(
            data=str(ml100k), sid=str(ml100k_sid), out=str(out), style="title", max_history=8, sample=32, seed=1
        )
    )
    return json.loads((out / "train.json").read_text())


def _model(folder, lora: bool):
    """The tiny LLaMA, optionally with LoRA on q/v and two trainable token rows (dropout 0: deterministic)."""
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(folder)
    if lora:
        model = apply_lora(model, False, 4, 8, 0.0, ["q_proj", "v_proj"], [5, 7])
        for name, weight in model.named_parameters():  # LoRA B starts at zero: give it weight so gradients differ
            if "lora_B" in name:
                torch.nn.init.normal_(weight, std=0.02)
    return model


def _losses(model, batch, num_items=None):
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "logits_to_keep")}
    full = model(**inputs, labels=batch["labels"]).loss
    sparse_out = model(**inputs, logits_to_keep=batch["logits_to_keep"])
    return full, sparse_out, labelled_token_loss(sparse_out, batch["labels"], num_items)


def test_only_positions_before_a_target_are_kept(batch):
    keep, labels = batch["logits_to_keep"], batch["labels"]
    assert keep.dtype == torch.bool and keep.shape == labels.shape
    assert int(keep.sum()) == int((labels[:, 1:] != -100).sum()) > 0
    assert not keep[:, -1].any()
    # padding (right side) and prompt positions are dropped: far fewer rows than batch x length
    assert keep.sum() < 0.5 * keep.numel()


class _CountOnly(torch.nn.Module):
    """A causal LM that slices its logits by hand (a count or 1-D positions), as a few architectures do."""

    def __init__(self):
        super().__init__()
        self.embed, self.head = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10)

    def forward(self, input_ids, logits_to_keep=0):
        from types import SimpleNamespace

        hidden = self.embed(input_ids)
        kept = hidden[:, -logits_to_keep:] if isinstance(logits_to_keep, int) else hidden[:, logits_to_keep]
        return SimpleNamespace(logits=self.head(kept))


def test_models_that_cannot_keep_logits_by_mask_are_told_apart():
    assert not keeps_logits_by_mask(_CountOnly())
    assert not keeps_logits_by_mask(torch.nn.Linear(2, 2))  # no logits_to_keep at all


@pytest.mark.parametrize("lora", [False, True])
def test_sparse_loss_matches_full_logits_loss(tiny_llama_dir, batch, lora):
    model = _model(tiny_llama_dir, lora)
    assert keeps_logits_by_mask(model)
    full, out, sparse = _losses(model, batch)
    assert out["logits"].shape[0] == int(batch["logits_to_keep"].sum())
    assert abs(full.item() - sparse.item()) < 1e-5
    params = [p for p in model.parameters() if p.requires_grad]
    grad_full = torch.autograd.grad(full, params)
    grad_sparse = torch.autograd.grad(sparse, params)
    for a, b in zip(grad_full, grad_sparse):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # with the Trainer's count of targets in the accumulated batch: sum / count
    count = torch.tensor(int((batch["labels"][:, 1:] != -100).sum()) * 2)
    _, _, halved = _losses(model, batch, count)
    assert abs(halved.item() - sparse.item() / 2) < 1e-5


def test_shared_prefix_length_stops_before_targets_and_row_ends(batch):
    from grec.training.loss import shared_prefix_length

    ids = batch["input_ids"]
    prefix = shared_prefix_length(batch)
    assert prefix >= 30 and (ids[:, :prefix] == ids[:1, :prefix]).all()  # the alpaca template + instruction
    assert (ids[:, prefix] != ids[0, prefix]).any()  # the longest common prefix, not less
    keep = batch["logits_to_keep"].clone()
    keep[2, 10] = True  # a target inside the shared part (train_on_inputs): share only what comes before
    assert shared_prefix_length({**batch, "logits_to_keep": keep}) == 10
    keep[0, 3] = True  # too short to be worth a second model call
    assert shared_prefix_length({**batch, "logits_to_keep": keep}) == 0
    assert shared_prefix_length({k: v[:1] for k, v in batch.items()}) == 0  # one row: nothing to share


@pytest.mark.parametrize("lora", [False, True])
def test_shared_prefix_pass_matches_the_full_pass(tiny_llama_dir, batch, lora):
    from grec.training.loss import forward_with_shared_prefix, shared_prefix_length

    model = _model(tiny_llama_dir, lora)
    model.train()
    full, out, sparse = _losses(model, batch)
    shared_out = forward_with_shared_prefix(model, batch, shared_prefix_length(batch))
    shared = labelled_token_loss(shared_out, batch["labels"])
    torch.testing.assert_close(shared_out["logits"], out["logits"], rtol=1e-4, atol=1e-5)
    assert abs(shared.item() - full.item()) < 1e-5
    params = [p for p in model.parameters() if p.requires_grad]
    for a, b in zip(torch.autograd.grad(full, params), torch.autograd.grad(shared, params)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
