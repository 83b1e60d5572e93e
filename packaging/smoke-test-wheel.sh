#!/usr/bin/env bash
# Build the wheel, install it (not editable) into a fresh virtual environment outside the checkout, and
# use it there: --version, examples, prepare --sample, a few training steps recorded in a database,
# export, and the window opened offscreen with its icon. Fails if a runtime file is missing from the wheel.
#
#   bash packaging/smoke-test-wheel.sh            (CI runs it after the tests: .ci/run)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python}
work=$(mktemp -d "${TMPDIR:-/tmp}/wb-wheel-XXXXXX")
trap 'rm -rf "$work"' EXIT

"$python" -m pip wheel --no-deps -q -w "$work/dist" "$repo"
"$python" -m venv "$work/venv"
venv="$work/venv/bin"
"$venv/python" -m pip install -q --upgrade pip
"$venv/python" -m pip install -q torch==2.13.0          # the CPU wheel (see .ci/run)
"$venv/python" -m pip install -q "$work"/dist/*.whl
cd "$work"                                             # nothing of the checkout is on the path from here

export HOME="$work/home" XDG_DATA_HOME="$work/home/data" XDG_CACHE_HOME="$work/home/cache"
where=$("$venv/python" -c "import workbench, pathlib; print(pathlib.Path(workbench.__file__).parent)")
case "$where" in "$work"/venv/*) ;; *) echo "workbench imported from $where, not the wheel" >&2; exit 1;; esac

"$venv/pretrain-workbench" --version
"$venv/pretrain-workbench" examples tiny-sample > tiny.toml
"$venv/pretrain-workbench" prepare --sample --out sample-data
ls "$XDG_CACHE_HOME"/pretrain-workbench/python-docs-*.txt
"$venv/python" -c "from workbench.data.sample import shipped_sample as s; assert s().is_file(), 'no shipped sample'"
"$venv/pretrain-workbench" train tiny.toml --dataset sample-data --db "sqlite:///$work/runs.db" \
    --set train.max_steps=3 --set train.eval_every=0 --set train.checkpoint_every=0 --out run
"$venv/pretrain-workbench" runs --db "sqlite:///$work/runs.db"
"$venv/pretrain-workbench" export run --out hf
test -f hf/config.json && test -f hf/model.safetensors
QT_QPA_PLATFORM=offscreen "$venv/python" - <<'PY'
from PySide6.QtWidgets import QApplication
from workbench.gui.app import release
from workbench.gui.main_window import MainWindow
import tempfile
app = QApplication([])
app.setOrganizationName("wheel-smoke")
window = MainWindow(db=f"sqlite:///{tempfile.mkdtemp()}/gui.db", prepare_on_start=False)
window.show()
app.processEvents()
assert not window.windowIcon().isNull(), "the window has no icon"
assert "Version" in window.about_text()
release(app, window)
print("window opened with its icon")
PY
echo "wheel smoke test passed ($(ls "$work"/dist))"
