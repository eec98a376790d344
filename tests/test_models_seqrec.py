"""The item-id sequence models (SASRec, HSTU) and what they share (grec/models/next_item.py)."""

import math

import pytest
import torch

from grec.base.errors import GrecError
from grec.models.hstu import HSTU
from grec.models.next_item import NextItemLoss, last_positions, right_pad
from grec.models.sasrec import SASRec


def test_right_pad_keeps_the_last_items_and_last_positions_finds_them():
    ids = right_pad([[1, 2, 3, 4], [5], []], 3)
    assert ids.tolist() == [[2, 3, 4], [5, 0, 0], [0, 0, 0]]
    hidden = torch.arange(3 * 3 * 2, dtype=torch.float).view(3, 3, 2)
    assert last_positions(hidden, ids).tolist() == [hidden[0, 2].tolist(), hidden[1, 0].tolist(), hidden[2, 0].tolist()]


def test_sampled_softmax_is_cross_entropy_over_target_and_drawn_items_with_hits_masked():
    torch.manual_seed(0)
    table = torch.randn(6, 4)  # row 0 padding, items 1..5
    hidden = torch.randn(2, 3, 4)
    labels = torch.tensor([[1, 2, 3], [4, 5, 0]])  # the last position of row 2 has no target
    objective = NextItemLoss("sampled", negatives=4, temperature=0.5, l2_norm=True)
    torch.manual_seed(1)
    loss = objective(hidden, labels, table)
    torch.manual_seed(1)
    drawn = torch.randint(1, 6, (2, 4))  # per sequence
    unit = torch.nn.functional.normalize
    q, t = unit(hidden, dim=-1), unit(table, dim=-1)
    terms = []
    for row in range(2):
        for pos in range(3):
            label = labels[row, pos].item()
            if not label:
                continue
            positive = (q[row, pos] @ t[label]).item() / 0.5
            negatives = [(q[row, pos] @ t[d]).item() / 0.5 for d in drawn[row].tolist() if d != label]
            terms.append(-positive + math.log(sum(math.exp(x) for x in [positive, *negatives])))
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    full = NextItemLoss("ce", temperature=0.5, l2_norm=True)
    assert full.logits(hidden[0], table).shape == (3, 6)
    expected = torch.nn.functional.cross_entropy(q[labels > 0] @ t.T / 0.5, labels[labels > 0])
    assert full(hidden, labels, table).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("bad", [{"loss": "bpr"}, {"negatives": 0}, {"temperature": 0.0}])
def test_loss_settings_are_checked(bad):
    with pytest.raises(GrecError, match="--model_args"):
        NextItemLoss(**bad)


@pytest.mark.parametrize("cls", [SASRec, HSTU])
def test_a_position_sees_only_earlier_items_and_padding_changes_nothing(cls):
    torch.manual_seed(0)
    model = cls(num_items=20, max_len=8, dim=8, layers=2, heads=2).eval()
    seq = torch.tensor([[3, 7, 1, 9, 4]])
    changed = seq.clone()
    changed[0, 3:] = torch.tensor([11, 12])
    with torch.no_grad():
        a, b = model.encode(seq), model.encode(changed)
        assert torch.allclose(a[0, :3], b[0, :3], atol=1e-6) and not torch.allclose(a[0, 3], b[0, 3])
        padded = torch.tensor([[3, 7, 1, 9, 4, 0, 0, 0], [5, 6, 0, 0, 0, 0, 0, 0]])
        assert torch.allclose(model.scores(padded)[0], model.scores(seq)[0], atol=1e-5)
        assert torch.allclose(model.scores(padded)[1], model.scores(torch.tensor([[5, 6]]))[0], atol=1e-5)


def test_hstu_learns_a_repeating_pattern_and_refuses_longer_sequences():
    torch.manual_seed(0)
    model = HSTU(num_items=12, max_len=10, dim=16, layers=2, heads=2, dropout=0.0, negatives=6, temperature=0.1)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    starts = torch.randint(0, 12, (64, 1))
    seqs = (starts + torch.arange(11)) % 12 + 1  # item k is always followed by item k + 1 (mod 12)
    for _ in range(150):
        loss = model(seqs[:, :-1], seqs[:, 1:])["loss"]
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.eval()
    top = model.scores(seqs[:, :-1]).argmax(dim=1)
    assert (top == seqs[:, -1]).float().mean() > 0.95
    with pytest.raises(GrecError, match="at most max_len=10"):
        model.encode(torch.ones(1, 11, dtype=torch.long))


def test_hstu_attention_backward_matches_autograd():
    from grec.models.hstu import _PointwiseAttention

    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 5, 4, dtype=torch.double, requires_grad=True) for _ in range(3))
    bias = torch.randn(5, 5, dtype=torch.double, requires_grad=True)
    causal = torch.ones(5, 5, dtype=torch.double).tril() / 5
    assert torch.autograd.gradcheck(_PointwiseAttention.apply, (q, k, v, bias, causal))
    plain = (torch.nn.functional.silu(q @ k.transpose(1, 2) + bias) * causal) @ v
    assert torch.allclose(_PointwiseAttention.apply(q, k, v, bias, causal), plain)
