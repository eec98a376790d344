"""Stage 5, evaluate: HR/NDCG/MRR@K tables over inference result files."""

from grec.base.config import callable_stage
from grec.base.metrics import RankingMetrics, target_rank
from grec.evaluate.report import markdown, paired_markdown
from grec.evaluate.run import EvaluateConfig, evaluate

callable_stage(__name__, EvaluateConfig, evaluate)  # grec.evaluate(...) runs the stage (grec.base.config)

__all__ = ["EvaluateConfig", "RankingMetrics", "evaluate", "markdown", "paired_markdown", "target_rank"]
