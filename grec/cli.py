"""The ``grec`` command: one subcommand per pipeline stage, each a thin wrapper over the package."""

from __future__ import annotations

import inspect
import logging
import os
import re
import sys
from collections.abc import Callable

from grec.base.config import command
from grec.base.distributed import rank
from grec.base.errors import GrecError
from grec.base.progress import interactive
from grec.base.threads import prefer_passive_waiting
from grec.base.version import __version__
from grec.stages import STAGES, Stage


class UsageError(GrecError):
    """A command line that does not parse: exit status 2."""


def _fail_on_skipped(result) -> None:
    """Exit non-zero, after the report, when a stage had to leave some of its inputs out."""
    skipped = getattr(result, "skipped", None)
    if skipped:
        raise GrecError(f"{len(skipped)} file(s) could not be used and were left out: {', '.join(skipped)}")


def _stage_command(stage: Stage) -> Callable:
    """The fire command of a stage: build its config from the flags, run it, print its report."""
    config_class, function = stage.load()

    def run(cfg) -> None:
        result = function(cfg)
        if rank() == 0:
            print(stage.report(cfg, result))
        _fail_on_skipped(result)

    run.__name__ = stage.name
    return command(config_class, run)


def _list() -> Callable:
    import grec.tasks  # noqa: F401  (importing the tasks registers grec's own tasks, models and datasets)
    from grec.base.registry import MODELS, TASK_DATASETS, TASKS, load_plugins
    from grec.prepare.datasets import DATASETS as PREPARED

    def registered(kind: str = "all", plugin: list[str] | None = None) -> None:
        """List the data sets grec prepare reads, and the registered tasks, models and task data sets.

        Args:
            kind: tasks, models, datasets or all.
            plugin: Python files or modules to import first (their registrations are listed too).
        """
        load_plugins([plugin] if isinstance(plugin, str) else list(plugin or []))
        tables = {
            "tasks": [("tasks", TASKS.names())],
            "models": [("models", MODELS.names())],
            "datasets": [
                ("datasets (grec prepare --dataset)", list(PREPARED)),
                ("task datasets (grec train-task --task ctr --data NAME)", TASK_DATASETS.names()),
            ],
        }
        if kind != "all" and kind not in tables:
            raise UsageError(f"grec list: expected tasks, models, datasets or all, got {kind!r}")
        for name, rows in tables.items():
            for title, names in rows if kind in ("all", name) else []:
                print(f"{title}: {', '.join(names) or '(none)'}")

    registered.__name__ = "list"
    return registered


def _export() -> Callable:
    from grec.train.export import ExportConfig, export

    def run(cfg: ExportConfig) -> None:
        print(f"merged model -> {export(cfg)}")

    run.__name__ = "export"
    return command(ExportConfig, run)


def _run() -> Callable:
    from grec.evaluate import markdown
    from grec.recipes import RunConfig, run_recipe

    def run(cfg: RunConfig) -> None:
        table = run_recipe(cfg)
        if table:
            print(markdown(table))
        _fail_on_skipped(table)

    run.__name__ = "run"
    return command(RunConfig, run)


def _generate() -> Callable:
    from grec.generate import GenerateConfig, generate

    def run(cfg: GenerateConfig) -> None:
        for k, text in enumerate(generate(cfg), 1):
            print(f"[{k}] {cfg.prompt}{text}")

    run.__name__ = "generate"
    return command(GenerateConfig, run)


def _serve() -> Callable:
    from grec.serve import ServeConfig, serve

    def run(cfg: ServeConfig) -> None:
        serve(cfg)

    run.__name__ = "serve"
    return command(ServeConfig, run)


# name -> (one-line description, builder of the fire command): the stages of grec.stages plus the
# commands that are not pipeline stages. Builders import lazily so that `grec --help` stays fast.
COMMANDS: dict[str, tuple[str, Callable[[], Callable]]] = {
    "run": ("run a recipe's whole stage chain, skipping finished stages (recipes: {recipes})", _run),
    **{name: (stage.description, lambda stage=stage: _stage_command(stage)) for name, stage in STAGES.items()},
    "list": ("list the data sets grec prepare reads, and the registered tasks, models and task data sets", _list),
    "export": ("merge a LoRA checkpoint into its base model for inference without peft", _export),
    "generate": ("print a checkpoint's continuations of a prompt", _generate),
    "serve": ("serve a checkpoint's recommendations over HTTP: micro-batched, with metrics and hot reload", _serve),
}


DECODING = ("infer", "serve", "generate")  # commands whose time is beam search: idle OpenMP threads sleep
SHORT_FLAG = re.compile(r"-[A-Za-z](=.*)?")


def check_flags(name: str, stage: Callable, argv: list[str]) -> list[str]:
    """Refuse unknown flags and stray words before fire runs anything; return ``argv`` with short flags spelt out.

    fire calls the command with the arguments it could use and only then complains about the
    rest, so a misspelt flag would run a whole stage with defaults; this check comes first.
    ``--help`` shows ``-t`` beside ``--topk`` where no other flag starts with that letter (fire's
    rule): such a short flag is accepted and becomes the long one.
    """
    known = set(inspect.signature(stage).parameters)
    initials = [flag[0] for flag in known]
    short = {flag[0]: flag for flag in known if initials.count(flag[0]) == 1 and flag[0] != "h"}  # -h is help
    out, takes_value = [], False
    for token in argv:
        if SHORT_FLAG.fullmatch(token):  # -t, -t=5 (a negative number is a value)
            letter, _, value = token[1:].partition("=")
            if letter not in short:
                raise UsageError(
                    f"grec {name}: unknown flag {token.split('=')[0]}; `grec {name} --help` lists the flags"
                )
            token = f"--{short[letter]}" + (f"={value}" if value else "")
        if token.startswith("--"):
            flag = token[2:].split("=", 1)[0].replace("-", "_")
            if flag not in known and not (flag.startswith("no") and flag[2:] in known):
                raise UsageError(f"grec {name}: unknown flag --{flag}; `grec {name} --help` lists the flags")
            takes_value = "=" not in token
        elif takes_value:
            takes_value = False
        else:
            raise UsageError(f"grec {name}: unexpected argument {token!r}; write flags as --name value")
        out.append(token)
    return out


def usage() -> str:
    from grec.recipes import recipe_names

    recipes = ", ".join(name for name in recipe_names() if "/" not in name) + ", paper/..."
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name.ljust(width)}  {text.format(recipes=recipes)}" for name, (text, _) in COMMANDS.items())
    return (
        f"grec {__version__}: generative recommendation with LLMs\n\n"
        f"usage: grec <command> [--flags]    (grec <command> --help for its flags)\n\ncommands:\n{rows}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``grec`` console command; returns the exit status."""
    import fire

    argv = sys.argv[1:] if argv is None else argv
    if not interactive():  # a log file: the libraries' bars stay quiet, grec's print a few plain lines
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name in DECODING:
        prefer_passive_waiting()  # before torch loads (grec/base/threads.py)
    if name not in COMMANDS:
        print(f"grec: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        stage = COMMANDS[name][1]()
        if "--help" in rest or "-h" in rest:
            from fire import helptext, trace

            text = helptext.HelpText(stage, trace.FireTrace(stage, name=name))
            print(re.sub(r"^(\s+)-h, --", r"\1--", text, flags=re.MULTILINE))  # -h means help, not --host
            return 0
        rest = check_flags(name, stage, rest)
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
