#!/usr/bin/env bash
# Builds the Python example plugins with componentize-py into
# plugins/target/python/NAME.wasm (the host's tests load them from there).
#
# Needs: python3 (3.10+) and pip, and PyPI access the first time:
# componentize-py is installed into plugins/target/py-venv (or, where the
# venv module is missing, with `pip install --target plugins/target/py-pkgs`).
# Set COMPONENTIZE_PY to use an existing componentize-py executable.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
plugins="$(dirname "$here")"
root="$(dirname "$plugins")"
out="$plugins/target/python"
version="0.25.1"

has_version() { "$@" --version 2>/dev/null | grep -q "componentize-py $version"; }

cpy=()
if [[ -n "${COMPONENTIZE_PY:-}" ]]; then
    cpy=("$COMPONENTIZE_PY")
elif has_version componentize-py; then
    cpy=(componentize-py)
else
    venv="$plugins/target/py-venv"
    pkgs="$plugins/target/py-pkgs"
    launcher=(env "PYTHONPATH=$pkgs" python3 -c \
        'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())')
    if has_version "$venv/bin/componentize-py"; then
        cpy=("$venv/bin/componentize-py")
    elif has_version "${launcher[@]}"; then
        cpy=("${launcher[@]}")
    elif python3 -m venv "$venv" 2>/dev/null && [[ -x "$venv/bin/pip" ]]; then
        echo "== installing componentize-py $version into $venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "componentize-py==$version"
        cpy=("$venv/bin/componentize-py")
    else
        echo "== installing componentize-py $version into $pkgs"
        rm -rf "$venv"
        python3 -m pip install -q --disable-pip-version-check --target "$pkgs" "componentize-py==$version"
        cpy=("${launcher[@]}")
    fi
fi

mkdir -p "$out"
# Build from a copy: componentize-py leaves __pycache__ next to the sources.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for app in "$here"/python-*/; do
    name="$(basename "$app")"
    name="${name#python-}"
    # The world (which hooks it exports) is in python-NAME/WORLD.
    world="$(tr -d '[:space:]' < "$app/WORLD")"
    echo "== componentize-py: $name ($world) -> $out/$name.wasm"
    rm -rf "${work:?}/$name" && cp -r "$app" "$work/$name"
    (cd "$work/$name" && "${cpy[@]}" -d "$root/wit" -w "$world" componentize app -o "$out/$name.wasm.tmp")
    mv "$out/$name.wasm.tmp" "$out/$name.wasm"
done
