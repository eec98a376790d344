"""The ``grec`` command: one subcommand per pipeline stage, each a thin wrapper over the package."""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable

from grec import __version__
from grec.config import command
from grec.distributed import rank
from grec.errors import GrecError


class UsageError(GrecError):
    """A command line that does not parse: exit status 2."""


def _prepare() -> Callable:
    from grec.prepare import PrepareConfig, format_summary, prepare

    def run(cfg: PrepareConfig) -> None:
        prepare(cfg)
        print(format_summary(cfg.out))

    run.__name__ = "prepare"
    return command(PrepareConfig, run)


def _index() -> Callable:
    from grec.index import IndexConfig, build_index
    from grec.index.summary import format_report

    def run(cfg: IndexConfig) -> None:
        print(format_report(build_index(cfg), cfg.out, cfg.data))

    run.__name__ = "index"
    return command(IndexConfig, run)


def _records() -> Callable:
    from grec.records import RecordsConfig, build_records

    def run(cfg: RecordsConfig) -> None:
        counts = build_records(cfg)
        print(f"records ({cfg.style}, tasks {','.join(cfg.tasks)}) -> {cfg.out}: "
              + ", ".join(f"{name} {n:,}" for name, n in counts.items()))  # fmt: skip

    run.__name__ = "records"
    return command(RecordsConfig, run)


def _train() -> Callable:
    from grec.train import TrainConfig, train

    def run(cfg: TrainConfig) -> None:
        state = train(cfg)
        if rank() != 0:
            return
        if state.get("best_metric") is not None:
            metric = state.get("metric", "valid_loss").replace("_", " ")
            print(f"trained -> {cfg.output_dir}: best {metric} {state['best_metric']:.4f} at epoch {state['best_epoch']}")
        else:
            print(f"trained -> {cfg.output_dir} ({state['epoch']} epochs)")

    run.__name__ = "train"
    return command(TrainConfig, run)


def _train_task() -> Callable:
    from grec.tasks import TaskConfig, train_task

    def run(cfg: TaskConfig) -> None:
        state = train_task(cfg)
        if rank() != 0:
            return
        test = ", ".join(f"{k} {v:.4f}" for k, v in state["test"].items())
        print(f"trained {cfg.task} -> {cfg.output_dir}: best {state['metric']} {state['best_metric']:.4f} "
              f"at epoch {state['best_epoch']}; test {test}")  # fmt: skip

    run.__name__ = "train-task"
    return command(TaskConfig, run)


def _list() -> Callable:
    from grec.registry import DATASETS, MODELS, TASKS, load_plugins

    def registered(kind: str = "all", plugin: list[str] | None = None) -> None:
        """List the registered tasks, models and datasets.

        Args:
            kind: tasks, models, datasets or all.
            plugin: Python files or modules to import first (their registrations are listed too).
        """
        load_plugins([plugin] if isinstance(plugin, str) else list(plugin or []))
        tables = {"tasks": TASKS, "models": MODELS, "datasets": DATASETS}
        if kind != "all" and kind not in tables:
            raise UsageError(f"grec list: expected tasks, models, datasets or all, got {kind!r}")
        for name, table in tables.items():
            if kind in ("all", name):
                print(f"{name}: {', '.join(table.names()) or '(none)'}")

    registered.__name__ = "list"
    return registered


def _popularity() -> Callable:
    from grec.infer.popularity import PopularityConfig, popularity

    def run(cfg: PopularityConfig) -> None:
        print(f"most-popular items for {popularity(cfg):,} users -> {cfg.out}")

    run.__name__ = "popularity"
    return command(PopularityConfig, run)


def _run() -> Callable:
    from grec.evaluate import markdown
    from grec.recipes import RunConfig, run_recipe

    def run(cfg: RunConfig) -> None:
        table = run_recipe(cfg)
        if table:
            print(markdown(table, [5, 10, 20]))

    run.__name__ = "run"
    return command(RunConfig, run)


def _export() -> Callable:
    from grec.train.export import ExportConfig, export

    def run(cfg: ExportConfig) -> None:
        print(f"merged model -> {export(cfg)}")

    run.__name__ = "export"
    return command(ExportConfig, run)


def _infer() -> Callable:
    from grec.infer import InferConfig, infer

    def run(cfg: InferConfig) -> None:
        summary = infer(cfg)
        if rank() != 0:
            return
        print(f"ranked items for {summary['records']:,} records -> {cfg.result_json_data} "
              f"({summary['users_per_second']:.1f} users/s, {summary['num_beams']} beams)")  # fmt: skip

    run.__name__ = "infer"
    return command(InferConfig, run)


def _evaluate() -> Callable:
    from grec.evaluate import EvaluateConfig, evaluate, markdown

    def run(cfg: EvaluateConfig) -> None:
        print(markdown(evaluate(cfg), cfg.topk))
        if cfg.seeds:
            from pathlib import Path

            print("\nmean ± std across seeds:\n" + (Path(cfg.input_dir) / "sweep.md").read_text())

    run.__name__ = "evaluate"
    return command(EvaluateConfig, run)


def _tokenizer() -> Callable:
    from grec.tokenizer import TokenizerConfig, train_tokenizer

    def run(cfg: TokenizerConfig) -> None:
        tokenizer = train_tokenizer(cfg)
        print(f"tokenizer ({cfg.style}, {cfg.model_type}, {len(tokenizer):,} tokens) -> {cfg.out}")

    run.__name__ = "tokenizer"
    return command(TokenizerConfig, run)


def _generate() -> Callable:
    from grec.generate import GenerateConfig, generate

    def run(cfg: GenerateConfig) -> None:
        for k, text in enumerate(generate(cfg), 1):
            print(f"[{k}] {cfg.prompt}{text}")

    run.__name__ = "generate"
    return command(GenerateConfig, run)


# name -> (one-line description, builder of the fire command). Builders import lazily so that
# `grec --help` stays fast.
COMMANDS: dict[str, tuple[str, Callable[[], Callable]]] = {
    "run": ("run a recipe's whole stage chain (tiger, sidlm, lcrec, bigrec, sasrec, demo), skipping finished stages", _run),
    "prepare": ("interaction logs (ML-100K, Amazon, CSV/JSONL) -> leave-one-out splits", _prepare),
    "index": ("item text -> embeddings -> collision-free semantic IDs (RQ-KMeans, RQ-VAE, ...)", _index),
    "records": ("prepared splits (+ semantic IDs) -> instruction records for LLM training", _records),
    "train": ("fine-tune a causal or seq2seq LM on records (LoRA or full); also train.py", _train),
    "train-task": ("train a registered task (SASRec, CTR, text/image classification, LM pretraining) with the shared trainer",
                   _train_task),
    "list": ("list the registered tasks, models and datasets", _list),
    "export": ("merge a LoRA checkpoint into its base model for inference without peft", _export),
    "infer": ("rank catalog items per user with SID-constrained beam search; also inference.py", _infer),
    "tokenizer": ("train a sentencepiece tokenizer on a corpus, saved as a Hugging Face tokenizer", _tokenizer),
    "generate": ("print a checkpoint's continuations of a prompt", _generate),
    "popularity": ("the most-popular baseline as a result file", _popularity),
    "evaluate": ("HR/NDCG/MRR@K tables for every result file under a folder; also eval/evaluate.py", _evaluate),
}


def check_flags(name: str, stage: Callable, argv: list[str]) -> None:
    """Refuse unknown flags and stray words before fire runs anything.

    fire calls the command with the arguments it could use and only then complains about the
    rest, so a misspelt flag would run a whole stage with defaults; this check comes first.
    """
    known = set(inspect.signature(stage).parameters)
    takes_value = False
    for token in argv:
        if token.startswith("--"):
            flag = token[2:].split("=", 1)[0].replace("-", "_")
            if flag not in known and not (flag.startswith("no") and flag[2:] in known):
                raise UsageError(f"grec {name}: unknown flag --{flag}; `grec {name} --help` lists the flags")
            takes_value = "=" not in token
        elif takes_value:
            takes_value = False
        else:
            raise UsageError(f"grec {name}: unexpected argument {token!r}; write flags as --name value")


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name.ljust(width)}  {text}" for name, (text, _) in COMMANDS.items())
    return (
        f"grec {__version__}: generative recommendation with LLMs\n\n"
        f"usage: grec <command> [--flags]    (grec <command> --help for its flags)\n\ncommands:\n{rows}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``grec`` console command; returns the exit status."""
    import fire

    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"grec: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        stage = COMMANDS[name][1]()
        if "--help" in rest or "-h" in rest:
            from fire import helptext, trace

            print(helptext.HelpText(stage, trace.FireTrace(stage, name=name)))
            return 0
        check_flags(name, stage, rest)
        fire.Fire(stage, rest, name=name)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except GrecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except fire.core.FireExit as exit_:
        return int(exit_.code or 0)
    return 0
