"""Every command the README and docs/*.md show in a code block is checked against the code as it is:
its command exists, every flag it passes is one the command takes, a recipe it names is packaged,
and a path into the demo's output folder is one the demo writes. The bench scripts' flags are
checked against the flags they declare. So the docs cannot drift from the tools again.

The commands' full runs stay with the tests of each stage and recipe (the demo, the recipes, the
BIGRec command lines); here every command is read, parsed and refused or accepted as the CLI would.
"""

import ast
import re
import shlex
from pathlib import Path

import pytest
from helpers import ROOT

from grec.cli import COMMANDS, UsageError, check_flags
from grec.recipes import RunConfig, load_recipe, recipe_names

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SCRIPTS = {"train.py": "train", "inference.py": "infer", "eval/evaluate.py": "evaluate", "align.py": "align"}
FIRST = ("grec ", "python ", ".venv/bin/python ", "accelerate launch ")
SHELL = ("bash", "sh", "shell", "console")  # the code blocks whose lines are commands


def shown_commands() -> list[tuple[str, list[str]]]:
    """(where, words) of each command line in the docs' fenced code blocks, continuation lines joined."""
    found = []
    for path in DOCS:
        inside, pending, start = False, "", 0
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("```"):
                inside = not inside and line[3:].strip() in SHELL
                continue
            text = _without_comment(line)
            if not inside or not (pending or text.lstrip().startswith(FIRST)):
                continue
            pending, start = (pending + " " + text.rstrip("\\").strip()).strip(), start or number
            try:
                words = shlex.split(pending.rstrip("&").strip())
            except ValueError:  # a quoted value that goes on over the next line
                continue
            if not text.endswith("\\"):
                found.append((f"{path.relative_to(ROOT)}:{start}", words))
                pending, start = "", 0
    return found


def _without_comment(line: str) -> str:
    """``line`` up to a shell comment (a # after a space, outside quotes)."""
    quote = None
    for k, char in enumerate(line):
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None and (k == 0 or line[k - 1].isspace()):
            return line[:k].rstrip()
    return line.rstrip()


def command_of(words: list[str]) -> tuple[str, list[str]] | None:
    """The grec command and its flags that ``words`` run (a script, grec, or accelerate launch SCRIPT)."""
    words = [w for w in words if w != "..."]  # "the same flags as above"
    if words[0] == "grec":
        return words[1], words[2:]
    script = next((k for k, w in enumerate(words) if w.removeprefix("./") in SCRIPTS), None)
    if script is None:
        return None
    name, flags = SCRIPTS[words[script].removeprefix("./")], words[script + 1 :]
    task = name == "train" and any(f == "--task" or f.startswith("--task=") for f in flags)
    return ("train-task" if task else name), flags  # train.py --task runs grec train-task


def argparse_flags(script: Path) -> set[str]:
    """The ``--flags`` a script declares with ``add_argument``, read from its source (importing a bench script
    costs seconds of torch)."""
    calls = [n for n in ast.walk(ast.parse(script.read_text())) if isinstance(n, ast.Call)]
    declared = [c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr == "add_argument"]
    return {a.value for c in declared for a in c.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")}


def demo_outputs() -> set[str]:
    stages = load_recipe(RunConfig(recipe="demo", data="data/ml-100k", out="outputs/demo"))
    values = [v for _, flags in stages for v in flags.values() for v in (v if isinstance(v, list) else [v])]
    return {v for v in values if isinstance(v, str) and v.startswith("outputs/demo/")}


COMMANDS_SHOWN = shown_commands()


def test_the_docs_show_the_main_commands():
    ran = {command_of(words)[0] for _, words in COMMANDS_SHOWN if command_of(words)}
    assert {"prepare", "index", "records", "train", "infer", "evaluate", "run", "serve", "export"} <= ran
    assert len(COMMANDS_SHOWN) > 60


def test_every_grec_command_in_the_docs_parses():
    recipes, written, problems, built = set(recipe_names()), demo_outputs(), [], {}
    for where, words in COMMANDS_SHOWN:
        parsed = command_of(words)
        if parsed is None:
            continue
        name, flags = parsed
        if name not in COMMANDS:
            problems.append(f"{where}: no command grec {name}")
            continue
        if "--help" in flags or name == "list" and not flags:
            continue
        try:
            check_flags(name, built.setdefault(name, COMMANDS[name][1]()), flags)
        except UsageError as err:
            problems.append(f"{where}: {err}")
        for flag, value in zip(flags, flags[1:]):
            if flag == "--recipe" and not value.endswith((".yaml", ".yml")) and value not in recipes:
                problems.append(f"{where}: no recipe {value}")
        for word in flags:
            if word.startswith("outputs/demo/") and not any(word.startswith(path) for path in written):
                problems.append(f"{where}: make demo writes no {word} (it writes {', '.join(sorted(written))})")
    assert not problems, "\n".join(problems)


def test_bench_commands_in_the_docs_use_the_scripts_flags():
    shown: dict[str, list[tuple[str, list[str]]]] = {}
    for where, words in COMMANDS_SHOWN:
        script = next((w for w in words if re.fullmatch(r"(\./)?bench/\w+\.py", w)), None)
        if script:
            shown.setdefault(script.removeprefix("./"), []).append((where, words))
    assert len(shown) >= 6
    problems = []
    for script, uses in shown.items():
        if not (ROOT / script).is_file():
            problems.append(f"{uses[0][0]}: no script {script}")
            continue
        known = argparse_flags(ROOT / script) | {"--help"}
        for where, words in uses:
            unknown = [w.split("=")[0] for w in words if w.startswith("--") and w.split("=")[0] not in known]
            problems += [f"{where}: {script} has no flag {flag}" for flag in unknown]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_answers_help(name, grec_cli):
    code, out, err = grec_cli(name, "--help")
    assert code == 0 and "--" in out, err
