#!/usr/bin/env bash
# Build the one-folder application with PyInstaller (packaging/pyinstaller/pretrain-workbench.spec) in a fresh
# virtual environment (CPU torch, the workbench installed from this checkout, PostgreSQL client included),
# then smoke-test the result from outside the checkout: --version, prepare the sample, train a few steps,
# export, and the window offscreen (gui --self-test). Prints the bundle's size, build time and start-up time.
#
#   bash packaging/build.sh [OUT_DIR]        (default: dist/ in the checkout; build files go to a temp folder)
#
# Linux and macOS run it as is; on Windows run the same steps from Git Bash (venv/Scripts instead of venv/bin).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/wb-bundle-XXXXXX")
trap 'rm -rf "$work"' EXIT
bin=bin; case "$(uname -s)" in MINGW*|MSYS*|CYGWIN*) bin=Scripts;; esac

start=$(date +%s)
"$python" -m venv "$work/venv"
venv="$work/venv/$bin"
"$venv/python" -m pip install -q --upgrade pip
"$venv/python" -m pip install -q torch==2.13.0         # a CPU build (see .ci/run); no CUDA libraries to exclude
"$venv/python" -m pip install -q "$repo[postgresql,zstd,parquet]" pyinstaller
case "$(uname -s)" in Linux) ;; *) "$venv/python" -m pip install -q pillow;; esac   # the icon as .ico / .icns
"$venv/python" -m PyInstaller --noconfirm --clean --log-level WARN --distpath "$out" --workpath "$work/build" \
    "$repo/packaging/pyinstaller/pretrain-workbench.spec"
built=$(date +%s)
app="$out/pretrain-workbench/pretrain-workbench"
[ -x "$app" ] || app="$app.exe"

# Smoke test, from a folder outside the checkout, on a throw-away profile.
cd "$work"
export HOME="$work/home" XDG_DATA_HOME="$work/home/data" XDG_CACHE_HOME="$work/home/cache" QT_QPA_PLATFORM=offscreen
"$app" --version
startup=$("$venv/python" -c 'import subprocess, sys, time
t = time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(f"{time.perf_counter() - t:.2f}")' "$app" --version)
"$app" examples tiny-sample > tiny.toml
"$app" prepare --sample --out sample-data
"$app" train tiny.toml --dataset sample-data --db "sqlite:///$work/runs.db" \
    --set train.max_steps=3 --set train.eval_every=0 --set train.checkpoint_every=0 --out run
"$app" export run --out hf
test -f hf/config.json && test -f hf/model.safetensors
"$app" gui --self-test 3

size=$(du -sm "$out/pretrain-workbench" | cut -f1)
printf '{"bundle": "%s", "size_mb": %s, "build_s": %s, "version_start_s": %s}\n' \
    "$out/pretrain-workbench" "$size" "$((built - start))" "$startup"
