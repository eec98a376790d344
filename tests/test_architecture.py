"""The package's layers, read from every module's imports (top level and inside functions).

base -> shared machinery -> stages -> tasks, recipes and the CLI. A module imports its own
package and the layers below it; a stage never imports another stage (stages talk through the
files in docs/formats.md); no import cycle, however indirect. A ``from grec.x import y`` counts as
importing ``grec.x``, so a package ``__init__`` that re-exports counts as the package.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "grec"
LAYERS = {  # first component under grec -> layer
    "base": 1,
    **dict.fromkeys(("lm", "decoding", "quantizers", "training", "models"), 2),
    **dict.fromkeys(("prepare", "index", "records", "train", "align", "infer", "evaluate", "tokenizer"), 3),
    **dict.fromkeys(("tasks", "recipes", "stages", "cli", "generate", "recommender", "serve", "__main__", ""), 4),
}
NAMES = {1: "base", 2: "shared machinery", 3: "stage", 4: "tasks/recipes/CLI"}
RULE = (
    "grec is layered: base -> shared machinery (lm, decoding, quantizers, training, models) -> stages "
    "(prepare, index, records, train, align, infer, evaluate, tokenizer) -> tasks, recipes, CLI, serve. Import only your own "
    "package and the layers below; stages never import each other (they share files, docs/formats.md); move "
    "what two stages need into base or shared machinery (docs/architecture.md)."
)


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_sources(root: Path = ROOT) -> dict[str, tuple[str, bool]]:
    """Module name -> (source, is a package ``__init__``) for every file under ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path.read_text(encoding="utf-8"), package)
    return out


def imports(module: str, source: str, package: bool) -> set[str]:
    """grec modules ``module`` imports anywhere in its body (functions included)."""
    here = module.split(".") if package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            names = [base]
            if node.level == 0 and base == "grec" or node.level:
                names += [f"{base}.{a.name}" for a in node.names]  # `from grec import x` may name a module
            found.update(n for n in names if n.split(".")[0] == "grec")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "grec")
    return found


def graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    known = set(sources)
    edges = {}
    for module, (source, package) in sources.items():
        targets = set()
        for name in imports(module, source, package):
            while name not in known and "." in name:  # `from grec.x import y`: y is a name in module grec.x
                name = name.rsplit(".", 1)[0]
            if name in known and name != module:
                targets.add(name)
        edges[module] = targets
    return edges


def violations(edges: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(edges.items()):
        mine = package_of(module)
        for target in sorted(targets):
            theirs = package_of(target)
            if theirs == mine:
                continue
            if LAYERS[theirs] > LAYERS[mine]:
                problems.append(f"{module} imports {target}: upward, {NAMES[LAYERS[mine]]} -> {NAMES[LAYERS[theirs]]}")
            elif LAYERS[theirs] == LAYERS[mine] == 3:
                problems.append(f"{module} imports {target}: one stage imports another ({mine} -> {theirs})")
    return problems + cycles(edges)


def cycles(edges: dict[str, set[str]]) -> list[str]:
    """One line per import cycle found by depth-first search (each cycle reported once)."""
    state, stack, found = {}, [], []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append("import cycle: " + " -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_every_module_belongs_to_a_layer():
    unknown = sorted({package_of(m) for m in module_sources()} - set(LAYERS))
    assert not unknown, f"packages with no layer in tests/test_architecture.py: {unknown}; {RULE}"


def test_layers_hold():
    problems = violations(graph(module_sources()))
    assert not problems, "\n".join(problems) + "\n" + RULE


@pytest.mark.parametrize(
    "planted, expected",
    [
        (("grec.infer.planted", "from grec.train.data import tokenize_records\n"), "one stage imports another"),
        (("grec.records.planted", "def f():\n    from grec.index import build_index\n"), "one stage imports another"),
        (("grec.base.planted", "def f():\n    import grec.decoding.ranker\n"), "upward"),
        (("grec.decoding.planted", "from grec import cli\n"), "upward"),
        (("grec.lm.planted", "from grec.decoding.planted2 import x\n"), "import cycle"),
    ],
)
def test_the_check_fails_on_planted_imports(planted, expected):
    sources = module_sources()
    name, source = planted
    sources[name] = (source, False)
    sources["grec.decoding.planted2"] = ("from grec.lm.planted import y\n", False)
    problems = violations(graph(sources))
    assert any(expected in p and name in p for p in problems), problems


def test_checkpoint_and_stage_file_names_are_spelt_once():
    """``grec/base/files.py`` names the files a stage folder or checkpoint holds; code uses its constants."""
    import re

    from grec.base import files

    names = [v for k, v in vars(files).items() if k.isupper()]
    pattern = re.compile("[\"'](" + "|".join(re.escape(n) for n in names) + ")[\"']")
    root = Path(__file__).resolve().parent.parent / "grec"
    spelt = [
        f"{path.relative_to(root.parent)}:{number}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "files.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line) and not line.lstrip().startswith(("#", '"""'))
    ]
    assert not spelt, f"file names written out instead of grec.base.files constants: {spelt}"


def test_flag_facts_live_in_field_metadata_not_in_lists_of_names():
    """Output-neutral, unrecorded and mode-only flags are declared on their fields (grec/base/fields.py);
    no module keeps a table of their names (a module-level constant naming two of them, or any line
    naming two output-neutral flags)."""
    import dataclasses
    import importlib
    import re

    from grec.base.fields import flagged
    from grec.stages import STAGES

    neutral: set[str] = set()
    moded: set[str] = set()
    for stage in STAGES.values():
        cls = getattr(importlib.import_module(stage.module), stage.config)
        assert dataclasses.is_dataclass(cls)
        neutral |= flagged(cls, "neutral")
        moded |= flagged(cls, "only") | flagged(cls, "unrecorded")
    assert {"overwrite", "keep_cpu_memory"} <= neutral and {"beta", "num_generations", "ci_gamma"} <= moded

    def quoted(names):
        return re.compile("[\"'](" + "|".join(sorted(names)) + ")[\"']")

    table = re.compile(r"^[A-Z_]+\s*(:[^=]+)?=")
    root = Path(__file__).resolve().parent.parent / "grec"
    lists = [
        f"{path.relative_to(root.parent)}:{number}"
        for path in sorted(root.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if (table.match(line) and len(quoted(neutral | moded).findall(line)) >= 2)
        or len(quoted(neutral).findall(line)) >= 2
    ]
    assert not lists, f"lists of flag names that belong in field metadata (grec/base/fields.py): {lists}"
