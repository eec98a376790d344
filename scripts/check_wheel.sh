#!/usr/bin/env bash
# The package as a user gets it: build grec's wheel, install it into a fresh virtual environment,
# and from a folder outside the repository run a recipe on a tiny budget and the README's Python
# example (the ```python block after the "python-example" marker), checking that the wheel's own
# files are used.
#
#   scripts/check_wheel.sh          # CI runs it after `make test` (about a minute)
#
# No network: the new environment sees the pinned dependencies already installed in .venv through
# a .pth file (the way --system-site-packages would show a system's), and the wheel goes in with
# --no-deps. .venv's editable install of grec is not visible there (a .pth file's paths are not
# scanned for further .pth files), so `import grec` can only find the wheel.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "check_wheel: building the wheel"
isolation=(--no-build-isolation)
"$python" -c "import setuptools" 2>/dev/null || isolation=()
# from a copy of what the wheel is made of, so that setuptools' build/ folder never lands in the checkout
mkdir -p "$work/src" && cp -r "$root/pyproject.toml" "$root/README.md" "$root/grec" "$work/src/"
"$python" -m pip wheel -q --no-deps "${isolation[@]}" -w "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/grec_llm-*.whl)
# (no `unzip -l | grep -q` under pipefail: grep stops reading at the match and unzip's SIGPIPE fails the pipe)
"$python" -c 'import sys, zipfile; sys.exit("grec/configs/recipes/sidlm.yaml" not in zipfile.ZipFile(sys.argv[1]).namelist())' "$wheel" ||
  { echo "check_wheel: $wheel holds no recipes" >&2; exit 1; }

echo "check_wheel: installing $(basename "$wheel") into a fresh venv"
"$python" -m venv "$work/venv"
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' >"$site/pinned-dependencies.pth"
"$work/venv/bin/python" -m pip install -q --no-deps --disable-pip-version-check "$wheel"

mkdir -p "$work/user" && cd "$work/user"
installed=$("$work/venv/bin/python" -c 'import grec; print(grec.__file__)')
[[ $installed == "$site"/* ]] || { echo "check_wheel: grec imported from $installed, not the wheel" >&2; exit 1; }

echo "check_wheel: grec run --recipe sidlm (tiny budget) from $PWD"
export GREC_CACHE=$work/cache OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
"$work/venv/bin/grec" run --recipe sidlm --data data/ml-100k --out outputs/sidlm \
  --overrides "{records: {sample: 64}, train: {num_epochs: 1, val_sample: 16}, infer: {sample: 24}}"

echo "check_wheel: the README's Python example"
awk '/<!-- python-example/ {found=1; next} found && /^```python/ {on=1; next} on && /^```/ {exit} on' \
  "$root/README.md" >example.py
[[ -s example.py ]] || { echo "check_wheel: no python-example block in README.md" >&2; exit 1; }
"$work/venv/bin/python" example.py
echo "check_wheel: ok"
