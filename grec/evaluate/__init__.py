"""Stage 5, evaluate: HR/NDCG/MRR@K tables over inference result files."""

from grec.base.metrics import RankingMetrics, target_rank
from grec.evaluate.run import EvaluateConfig, evaluate, markdown

__all__ = ["EvaluateConfig", "RankingMetrics", "evaluate", "markdown", "target_rank"]
