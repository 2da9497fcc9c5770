#!/usr/bin/env bash
# The whole test suite: lint, the tests on every Keras backend, the example
# plugin package, and the docs. Stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== ruff"
ruff check .

for backend in tensorflow jax torch; do
    echo "== pytest, KERAS_BACKEND=$backend"
    KERAS_BACKEND=$backend python -m pytest tests -q -p no:cacheprovider
done

echo "== example plugin: plugins/klg-similarities-extra"
python -m pytest plugins/klg-similarities-extra/tests -q -p no:cacheprovider
klg plugins | python -c "import json, sys; names = [p['name'] for p in json.load(sys.stdin)]; \
assert 'similarities_extra' in names, names; print('klg plugins lists', names)"

echo "== docs"
mkdocs build --strict --quiet -d "$(mktemp -d)"
