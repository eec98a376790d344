"""``grec evaluate`` / ``eval/evaluate.py``: score every result file under a folder, one table row each."""

from __future__ import annotations

import csv
import io
import itertools
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from grec.base.errors import GrecError
from grec.base.io import atomic_open, read_jsonl, read_records, write_json
from grec.base.metrics import TOPK, RankingMetrics
from grec.evaluate.paired import compare, record_keys
from grec.evaluate.report import paired_metrics, plot_metrics, seed_markdown

logger = logging.getLogger("grec")
RESULT_SUFFIXES = (".json", ".jsonl")
OWN_FILES = ("metrics.json", "per_record.json")


@dataclass
class EvaluateConfig:
    """grec evaluate: HR@K, NDCG@K and MRR@K tables for every result file under a folder.

    A result file is JSON lines, one record per line with "target" (item id) and "predict"
    (ranked item ids), as inference.py writes them. Writes metrics.json and metrics.csv to
    --input_dir and prints a markdown table. Example: python eval/evaluate.py --input_dir outputs

    Args:
        input_dir: folder searched recursively for result files (*.json, *.jsonl).
        topk: cut-offs K.
        items: an items.jsonl (grec prepare) to count predicted ids outside the catalog and catalog coverage@10.
        plot: also draw metrics.png, a bar chart of HR@10 and NDCG@10 per result file.
        seeds: also group result files whose paths differ only in a "seed<N>" part and write mean +/- std per group to sweep.json and sweep.md (scripts/sweep.sh).
        baseline: a result file (its path under --input_dir, or a unique part of it such as popularity): every other run is compared with it record by record (paired), each metric's difference with a confidence interval and a p-value, significant ones marked * in the table and metrics.json.
        bootstrap: --baseline's intervals and p-values from 10,000 paired bootstrap resamples instead of the paired t-test.
        alpha: significance level of --baseline's tests and intervals.
    """

    input_dir: str = "outputs"
    topk: list[int] | None = None
    items: str | None = None
    plot: bool = True
    seeds: bool = False
    baseline: str | None = None
    bootstrap: bool = False
    alpha: float = 0.05

    def __post_init__(self) -> None:
        self.topk = sorted(set(self.topk or TOPK))
        if self.topk[0] < 1:
            raise GrecError(f"--topk: cut-offs K must be at least 1, got {self.topk[0]}")
        if not 0 < self.alpha < 1:
            raise GrecError(f"--alpha: expected a level between 0 and 1 such as 0.05, got {self.alpha}")
        if not Path(self.input_dir).is_dir():
            raise GrecError(f"{self.input_dir}: folder not found (given as --input_dir)")
        if self.items is not None and not Path(self.items).is_file():
            raise GrecError(f"{self.items}: file not found (given as --items)")


class Scores(dict):
    """The table ``evaluate`` returns (result file -> metrics), with ``skipped``: result file -> why it
    could not be scored. The CLI prints the table, then exits non-zero when something was skipped."""

    def __init__(self, rows: dict, skipped: dict[str, str]):
        super().__init__(rows)
        self.skipped = skipped


def score_file(
    path: Path,
    topk: list[int],
    catalog: set[str] | None,
    splits: set[str] | None = None,
    ranks: dict[str, int] | None = None,
) -> dict:
    """Metrics of one result file. The ``split`` tags its records carry are added to ``splits``, and
    each record's target rank (0-based, -1 when missed) to ``ranks`` under its (user, target) key."""
    metrics = RankingMetrics(tuple(topk), catalog)
    pairs, found, protocols = [], [], set()
    for number, record in read_records(path):
        record = bigrec_record(record)
        protocols.add(record.get("exclude_history"))
        if "target" not in record or "predict" not in record:
            raise GrecError(f"{path}: record {number} needs 'target' and 'predict' fields")
        predictions = record["predict"] or []
        if not isinstance(predictions, list):
            raise GrecError(f"{path}: record {number}: 'predict' must be a list of item ids")
        rank = metrics.add([str(p) for p in predictions], str(record["target"]))
        if splits is not None and record.get("split"):
            splits.add(str(record["split"]))
        pairs.append((str(record.get("user_id")), str(record["target"])))
        found.append(-1 if rank is None else rank)
    if ranks is not None:
        ranks.update(zip(record_keys(pairs), found))
    row = metrics.result()
    for key in [key for key in row if "@" in key and not key.startswith("coverage")]:
        if int(key.split("@")[1]) > metrics.longest:  # the run listed fewer items: HR@50 of 20 is not measured
            row[key] = None
    return row | {"list_length": metrics.longest, "exclude_history": _protocol(protocols)}


def _protocol(values: set) -> bool | str | None:
    """Whether a run left the users' history out: true, false, "mixed", or None where its records do not say."""
    known = values - {None}
    return "mixed" if len(known) > 1 else (known.pop() if known and None not in values else None)


def bigrec_record(record: dict) -> dict:
    """A record of BIGRec's own inference (``output``: the quoted target title, ``predict``: generated
    titles, no ``target``) as titles to match exactly; any other record as it is."""
    if "target" in record or not isinstance(record.get("output"), str) or not isinstance(record.get("predict"), list):
        return record
    return {**record, "target": _title(record["output"]), "predict": [_title(p) for p in record["predict"]]}


def _title(text: object) -> str:
    """A title as BIGRec writes it (quoted, maybe with a newline) as the bare title."""
    return str(text).strip().strip('"').strip()


def check_same_split(splits: dict[str, set[str]]) -> None:
    """Refuse to set runs on different data splits side by side (files that record none are not checked)."""
    tags = {tag for found in splits.values() for tag in found}
    if len(tags) > 1:
        listing = "; ".join(f"{name}: {', '.join(sorted(found))}" for name, found in splits.items() if found)
        raise GrecError(
            f"the result files were ranked on different data splits ({listing}), so their figures cannot be "
            f"compared; evaluate each split's runs from its own folder"
        )


def is_result_file(path: Path) -> bool:
    """Result files hold records with 'predict'; records, settings and metrics files are skipped."""
    if path.suffix not in RESULT_SUFFIXES or path.name in OWN_FILES or path.name.startswith("."):
        return False
    with open(path, encoding="utf-8", errors="replace") as handle:
        return '"predict"' in handle.read(65536)


def evaluate(cfg: EvaluateConfig) -> dict[str, dict]:
    """Score every result file under ``cfg.input_dir``; write metrics.json / metrics.csv; return them."""
    root = Path(cfg.input_dir)
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_result_file(p))
    if not files:
        raise GrecError(f"{root}: no result files (JSON/JSONL records with a 'predict' field) found")
    catalog = None
    if cfg.items is not None:
        catalog = {str(r["item_id"]) for _, r in read_jsonl(cfg.items)}
    table: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    splits: dict[str, set[str]] = {}
    ranks: dict[str, dict[str, int]] = {}
    for path in files:
        name = str(path.relative_to(root))
        try:
            table[name] = score_file(
                path, cfg.topk, catalog, splits.setdefault(name, set()), ranks.setdefault(name, {})
            )
        except GrecError as err:
            logger.error("evaluate: skipped %s", err)
            skipped[name] = str(err)
            ranks.pop(name)
    check_same_split(splits)
    if not table:
        raise GrecError(f"{root}: no result file could be scored ({len(skipped)} tried; see the messages above)")
    if cfg.baseline is not None:
        add_paired(table, ranks, cfg)
    write_json(root / "metrics.json", table)
    write_json(
        root / "per_record.json", {name: {"key": list(r), "rank": list(r.values())} for name, r in ranks.items()}
    )
    columns = [c for c, v in next(iter(table.values())).items() if not isinstance(v, dict)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", *columns])
    for name, row in table.items():
        writer.writerow([name, *(row.get(c) for c in columns)])
    with atomic_open(root / "metrics.csv") as handle:
        handle.write(buffer.getvalue())
    if cfg.plot:
        plot_metrics(table, root / "metrics.png")
    if cfg.seeds:
        groups = across_seeds(table)
        if cfg.baseline is not None:
            add_seed_paired(groups, ranks, cfg)
        write_json(root / "sweep.json", groups)
        with atomic_open(root / "sweep.md") as handle:
            handle.write(seed_markdown(groups, cfg.topk) + "\n")
    return Scores(table, skipped)


def baseline_files(name: str, names: list[str]) -> list[str]:
    """The result files ``--baseline`` names: an exact path under --input_dir, or those whose file name without
    its suffix is ``name`` (sidlm -> sidlm.jsonl beside sidlm-sdpo.jsonl), else those whose path contains it.
    Several are fine when each run has its own (a sweep: one popularity file per run folder)."""
    if name in names:
        return [name]
    stems = [n for n in names if Path(n).name.split(".")[0] == name]
    matches = stems or [n for n in names if name in n]
    if not matches or len(matches) == len(names) > 1:
        which = "none" if not matches else "every one"
        raise GrecError(f"--baseline {name!r}: matches {which} of the result files ({', '.join(names)}); give its path")
    return matches


def nearest_baseline(run: str, baselines: list[str], flag: str) -> str:
    """The baseline file that shares the longest folder path with ``run`` (its own run's, in a sweep)."""
    if len(baselines) == 1:
        return baselines[0]

    def shared(other: str) -> int:
        return sum(
            1 for _ in itertools.takewhile(lambda pair: pair[0] == pair[1], zip(Path(run).parts, Path(other).parts))
        )

    best = max(map(shared, baselines))
    closest = [b for b in baselines if shared(b) == best]
    if len(closest) > 1:
        raise GrecError(f"--baseline {flag!r}: {run} is as near to {' and '.join(closest)}; give one path")
    return closest[0]


def paired_entry(
    baseline: list[dict[str, int]], run: list[dict[str, int]], name: str, cfg: EvaluateConfig
) -> dict | None:
    """``{"baseline": name, "test", "alpha", <metric>: {...}}``: the runs' paired tests against the
    baseline's (each a list of result files' ranks), or None when they share no records."""
    method = "bootstrap" if cfg.bootstrap else "ttest"
    tests = compare(baseline, run, paired_metrics(cfg.topk), method, cfg.alpha)
    return None if tests is None else {"baseline": name, "test": method, "alpha": cfg.alpha, **tests}


def add_paired(table: dict[str, dict], ranks: dict[str, dict[str, int]], cfg: EvaluateConfig) -> None:
    """Put ``paired``: each run's tests against the baseline (grec.evaluate.paired) into its table row."""
    baselines = baseline_files(cfg.baseline, list(table))
    for name, row in table.items():
        if name in baselines:
            continue
        baseline = nearest_baseline(name, baselines, cfg.baseline)
        paired = paired_entry([ranks[baseline]], [ranks[name]], baseline, cfg)
        if paired is None:
            logger.warning("evaluate: %s shares no records with the baseline %s; not compared", name, baseline)
            continue
        row["paired"] = paired


SEED = re.compile(r"seed[-_]?\d+")


def across_seeds(table: dict[str, dict]) -> dict[str, dict]:
    """Mean and standard deviation (n - 1) of every metric over files that differ only in their seed."""
    import statistics

    groups: dict[str, list[dict]] = {}
    for name, row in table.items():
        groups.setdefault(SEED.sub("seed*", name), []).append(row)
    out = {}
    for key, rows in groups.items():
        stats = {"seeds": len(rows)}
        for metric in (m for m, v in rows[0].items() if "@" in m or m.endswith("_rate") or m == "records"):
            values = [r.get(metric) for r in rows]
            measured = None not in values
            stats[metric] = {  # a cut-off one seed's run did not measure is not measured for the setting
                "mean": statistics.fmean(values) if measured else None,
                "std": (statistics.stdev(values) if len(values) > 1 else 0.0) if measured else None,
            }
        out[key] = stats
    return out


def add_seed_paired(groups: dict[str, dict], ranks: dict[str, dict[str, int]], cfg: EvaluateConfig) -> None:
    """Each setting's seed-averaged per-record metrics against the baseline's (a setting, or one file)."""
    members = {key: [n for n in ranks if SEED.sub("seed*", n) == key] for key in groups}
    settings = baseline_files(cfg.baseline, list(groups)) if any(cfg.baseline in k for k in groups) else []
    files = [] if settings else baseline_files(cfg.baseline, list(ranks))
    for key, stats in groups.items():
        if key in settings:
            continue
        base = nearest_baseline(key, settings or files, cfg.baseline)
        base_files = members[base] if settings else [base]
        paired = paired_entry([ranks[n] for n in base_files], [ranks[n] for n in members[key]], base, cfg)
        if paired is not None:
            stats["paired"] = paired
