"""``RecordsConfig``: every flag of ``grec records``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grec.base.config import check_sample
from grec.base.errors import GrecError
from grec.base.fields import neutral, unrecorded
from grec.base.files import SID_MAP
from grec.base.io import check_output
from grec.base.templates import PROMPTS, STYLES

RECORD_TASKS = ("seqrec", "sequence", "item2index", "index2item", "desc2index", "titles2index", "index2title")
SID_TASKS = RECORD_TASKS[2:]  # LC-Rec's alignment tasks: each needs the semantic IDs whatever the style
HISTORY_TASKS = ("titles2index", "index2title")  # alignment tasks with one record per training interaction


@dataclass
class RecordsConfig:
    """grec records: prepared splits -> alpaca-style instruction records for training an LLM recommender.

    Writes train.json, valid.json and test.json (JSON lists of {"instruction", "input", "output",
    "user_id", "target", "history", "template"}) and settings.json to --out.
    Example: grec records --data data/ml-100k --sid data/ml-100k/sid --style sid --out data/ml-100k/records/sid

    Args:
        data: a folder written by grec prepare.
        out: output folder; default <data>/records/<style>.
        style: sid: history and target as semantic IDs (LC-Rec, TIGER); title: as quoted titles (BIGRec).
        sid: a folder written by grec index (needed for --style sid and the alignment tasks).
        tasks: seqrec (next item, one record per training interaction), sequence (each user's whole training sequence cut into windows of max_history + 1 items, one record per window: a causal model learns every next item of a window in one pass, as SASRec does; needs --prompt plain), and LC-Rec's alignment tasks: item2index (title -> SID), index2item (SID -> title), desc2index (the item's text without its title -> SID, item search; items whose text is only the title are left out), titles2index (a history as titles -> the next item's SID) and index2title (a history as SIDs -> the next item's title), the last two one record per training interaction; sequence and the alignment tasks go to train.json only (valid and test hold seqrec records).
        prompt: alpaca (instruction, input and response mark; for LLMs), chat (instruction and input as one user turn in the model's chat template, applied when the model's tokenizer reads the record; for instruction-tuned LLMs; alpaca where a tokenizer has no template) or plain (the history alone, items back to back; for models trained from scratch such as TIGER).
        max_history: most recent history items kept in each prompt.
        sample: keep a seeded random subset of this many training records (auxiliary-task records included); -1 keeps all.
        seed: random seed for sample.
        overwrite: replace an output folder written with different settings.
    """

    data: str = "data/ml-100k"
    out: str | None = unrecorded(None)
    style: str = "sid"
    sid: str | None = None
    tasks: list[str] | None = None
    prompt: str = "alpaca"
    max_history: int = 20
    sample: int = -1
    seed: int = 42
    overwrite: bool = neutral(False)

    def __post_init__(self) -> None:
        self.tasks = list(self.tasks) if self.tasks else ["seqrec"]
        if self.style not in STYLES:
            raise GrecError(f"--style: expected one of {', '.join(STYLES)}, got {self.style!r}")
        if self.prompt not in PROMPTS:
            raise GrecError(f"--prompt: expected one of {', '.join(PROMPTS)}, got {self.prompt!r}")
        unknown = [t for t in self.tasks if t not in RECORD_TASKS]
        if unknown:
            raise GrecError(f"--tasks: unknown task {unknown[0]!r}; choose from {', '.join(RECORD_TASKS)}")
        needs_sid = self.style == "sid" or any(t in SID_TASKS for t in self.tasks)
        if needs_sid and self.sid is None:
            raise GrecError(f"--sid: required for --style sid and for the tasks {', '.join(SID_TASKS)}")
        if self.sid is not None and not (Path(self.sid) / SID_MAP).is_file():
            raise GrecError(f"{Path(self.sid) / SID_MAP}: file not found; run grec index first or fix --sid")
        for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "items.jsonl"):
            if not (Path(self.data) / name).is_file():
                raise GrecError(f"{Path(self.data) / name}: file not found; run grec prepare first or fix --data")
        if "sequence" in self.tasks and self.prompt != "plain":
            raise GrecError("--tasks sequence: needs --prompt plain (a window is the items back to back, no template)")
        if self.max_history < 1:
            raise GrecError("--max_history: must be at least 1")
        check_sample("sample", self.sample)
        self.out = self.out or str(Path(self.data) / "records" / self.style)
        check_output(self.out, "--out")
