"""``Recommender``: a trained checkpoint as a Python object that recommends catalog items for histories.

    >>> from grec import Recommender
    >>> rec = Recommender.from_pretrained("outputs/demo/sidlm/best")       # doctest: +SKIP
    >>> [r.item_id for r in rec.recommend(["50", "172", "181"], k=3)]      # doctest: +SKIP
    ['174', '210', '1']

The prompt is rebuilt as ``grec records`` wrote it for training (the checkpoint's ``records.json``:
style, prompt and history length), cut to the training length by the same rule, and ranked by the
same ``Ranker`` as ``grec infer``: every recommendation is a catalog item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.files import RECORDS_SETTINGS, SID_MAP
from grec.base.io import read_json, read_jsonl
from grec.base.queries import RequestError, item_ids, known_items, true_or_false, whole_number
from grec.base.sid import SidMap
from grec.base.templates import check_prompt_settings, history_record, quote
from grec.base.threads import prefer_passive_waiting
from grec.lm.serving_files import CATALOG, PROMPT_KEYS

prefer_passive_waiting()  # a recommender decodes: idle OpenMP threads sleep (grec/base/threads.py)


@dataclass(frozen=True)
class Recommendation:
    """One recommended item: its id, its title (None when the checkpoint carries no catalog) and its score
    (the sequence log-probability of its semantic ID; None in title mode, which ranks without scores)."""

    item_id: str
    title: str | None
    score: float | None


class Recommender:
    """Recommends the next items for users' histories with a grec checkpoint (SID or title style).

    Build it with ``from_pretrained``; ``recommend`` takes one history (a list of item ids, oldest
    first) or a list of histories.
    """

    def __init__(self, model, tokenizer, seq2seq: bool, settings: dict, titles: dict[str, str] | None, **options):
        self.model, self.tokenizer, self.seq2seq = model, tokenizer, seq2seq
        self.settings, self.titles = settings, titles
        self.sid_map: SidMap | None = options.get("sid_map")
        self.num_beams = options.get("num_beams", 20)
        self.cutoff_len = options.get("cutoff_len", 512)
        self.device = options.get("device", "cpu")
        self._rankers: dict[int, object] = {}
        if settings["style"] == "sid" and self.sid_map is None:
            raise GrecError("a SID-style recommender needs the checkpoint's sid_map.json")
        if settings["style"] == "title" and titles is None:
            raise GrecError(f"a title-style recommender needs the catalog's titles ({CATALOG} in the checkpoint)")
        self.catalog = set(self.sid_map.item_ids) if self.sid_map is not None else set(titles)

    @classmethod
    def from_pretrained(cls, path: str | Path, num_beams: int = 20, device: str = "cpu", **settings) -> Recommender:
        """Load a best/, last/ or exported folder that ``grec train`` wrote.

        Args:
            path: the checkpoint folder (LoRA adapters are applied; a merged export loads as is), or a hub
                repository that ``grec export --push_to_hub`` wrote (downloaded once into the hub cache).
            num_beams: beams of the constrained search (at least ``k`` are used).
            device: cpu, cuda, ...
            settings: ``style``, ``prompt``, ``max_history``: for a checkpoint without ``records.json``
                (trained on records not written by ``grec records``), or to override it.
        """
        from grec.lm.checkpoint import check_checkpoint, load_trained

        path = Path(path)
        if not path.exists() and str(path).count("/") == 1 and not str(path).startswith((".", "/")):
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(str(path)))
        arguments = check_checkpoint(path)
        stored = read_json(path / RECORDS_SETTINGS) if (path / RECORDS_SETTINGS).is_file() else {}
        unknown = sorted(set(settings) - set(PROMPT_KEYS))
        if unknown:
            raise GrecError(
                f"Recommender.from_pretrained: unknown setting {unknown[0]!r}; give {', '.join(PROMPT_KEYS)}"
            )
        merged = {**stored, **settings}
        check_prompt_settings(stored, str(path / RECORDS_SETTINGS))
        check_prompt_settings(settings, "Recommender.from_pretrained")
        missing = [key for key in PROMPT_KEYS if key not in merged]
        if missing:
            raise GrecError(
                f"{path}: no {RECORDS_SETTINGS} (the checkpoint predates it or its records were not written by grec "
                f"records); pass {', '.join(f'{k}=...' for k in missing)} as grec records wrote its training records"
            )
        titles = (
            {row["item_id"]: row["title"] for _, row in read_jsonl(path / CATALOG)}
            if (path / CATALOG).is_file()
            else None
        )
        model, tokenizer, seq2seq = load_trained(path, in_memory=True)  # files may change while it serves
        return cls(
            model.to(device).eval(),
            tokenizer,
            seq2seq,
            merged,
            titles,
            sid_map=SidMap.load(path) if (path / SID_MAP).is_file() else None,
            num_beams=num_beams,
            cutoff_len=arguments.get("cutoff_len", 512),
            device=device,
        )

    def record(self, history: list[str]) -> dict:
        """The records-stage record of a history: what the model reads (``grec.base.templates.prompt``)."""
        history = item_ids(history, "history", required=True)
        known_items(history, "history", self.catalog)
        return self._record(history)

    def _record(self, history: list[str]) -> dict:
        style = self.settings["style"]
        render = self.sid_map.sid_string if style == "sid" else (lambda item: quote(self.titles[item]))
        return history_record(history, render, style, self.settings["prompt"], self.settings["max_history"])

    def recommend(
        self,
        history: list[str] | list[list[str]],
        k: int = 10,
        exclude_history: bool = True,
        exclude: list[str] | list[list[str]] | None = None,
    ) -> list[Recommendation] | list[list[Recommendation]]:
        """The ``k`` best next items for one history (a list of item ids, oldest first) or for each of a list of
        histories (one constrained beam search for the batch).

        ``exclude_history`` leaves out every item of the history (not only the ``max_history`` the prompt
        shows); ``exclude`` names further catalog items to leave out (per history, for a batch). Arguments
        are checked as ``grec serve`` checks a request (``grec.base.queries``): a bad one is a
        ``RequestError`` naming the argument, with the server's message.
        """
        batch = isinstance(history, (list, tuple)) and bool(history) and isinstance(history[0], (list, tuple))
        k = whole_number(k, "k")
        exclude_history = true_or_false(exclude_history, "exclude_history")
        histories = list(history) if batch else [history]
        fields = [f"history[{j}]" for j in range(len(histories))] if batch else ["history"]
        histories = [item_ids(h, field, required=True) for h, field in zip(histories, fields)]
        if batch and exclude is not None:  # one list per history
            if not isinstance(exclude, (list, tuple)) or len(exclude) != len(histories):
                raise RequestError("exclude", f"exclude: one list of item ids per history ({len(histories)})")
            extra = [item_ids(e, f"exclude[{j}]") for j, e in enumerate(exclude)]
        else:
            extra = [item_ids(exclude if exclude is not None else [], "exclude")]
        for field, h in zip(fields, histories):
            known_items(h, field, self.catalog)
        for field, e in zip(fields, extra):
            known_items(e, field.replace("history", "exclude"), self.catalog)
        records = [self._record(h) for h in histories]  # checked above
        skip = [[*h, *e] if exclude_history else e for h, e in zip(histories, extra)]
        ranked = self._ranker(k).rank(records, False, skip)
        out = [
            [
                Recommendation(item, self.titles.get(item) if self.titles else None, score)
                for item, score in zip(items, scores or [None] * len(items))
            ]
            for items, scores in ranked
        ]
        return out if batch else out[0]

    def _ranker(self, k: int):
        if k not in self._rankers:
            beams = max(self.num_beams, k)
            if self.settings["style"] == "sid":
                from grec.decoding.ranker import Ranker

                self._rankers[k] = Ranker(
                    self.model,
                    self.tokenizer,
                    self.sid_map,
                    self.seq2seq,
                    beams,
                    k,
                    self.cutoff_len,
                    device=self.device,
                )
            else:
                from grec.decoding.titles import TitleRanker

                self._rankers[k] = TitleRanker(
                    self.model,
                    self.tokenizer,
                    self.titles,
                    self.seq2seq,
                    beams,
                    k,
                    cutoff_len=self.cutoff_len,
                    device=self.device,
                )
        return self._rankers[k]
