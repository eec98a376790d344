"""Validation scorers that pick the best epoch by a ranking metric instead of the loss."""

from __future__ import annotations


class SidNdcg:
    """NDCG@10 of constrained beam search over the validation records (``--eval_metric ndcg``).

    The user's history is excluded from the ranking unless ``--eval_exclude_history false``, so the
    epoch picked is the best one under the protocol inference is scored by.
    """

    metric = "ndcg@10"
    higher_is_better = True

    def __init__(self, cfg, records: list[dict], tokenizer, sid_map, seq2seq: bool):
        self.cfg, self.records, self.tokenizer, self.sid_map, self.seq2seq = cfg, records, tokenizer, sid_map, seq2seq

    def __call__(self, model) -> dict[str, float]:
        from grec.base.metrics import RankingMetrics
        from grec.decoding.ranker import Ranker

        beams = self.cfg.eval_beams
        ranker = Ranker(
            model,
            self.tokenizer,
            self.sid_map,
            self.seq2seq,
            beams,
            beams,
            self.cfg.cutoff_len,
            device=next(model.parameters()).device,
        )
        metrics = RankingMetrics((10,))
        step = self.cfg.micro_batch_size
        for start in range(0, len(self.records), step):
            batch = self.records[start : start + step]
            for record, (items, _) in zip(batch, ranker.rank(batch, self.cfg.eval_exclude_history)):
                metrics.add(items, str(record["target"]))
        return {self.metric: metrics.result()["NDCG@10"]}
