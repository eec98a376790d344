"""The ctr task: feature vocabularies, row sources and the task itself."""

from grec.tasks.ctr.task import CtrTask, grow_into

__all__ = ["CtrTask", "grow_into"]
