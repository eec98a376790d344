"""The training machinery every trainer shares: ``TrainingArguments``, checkpoints and logs, the loop, losses."""
