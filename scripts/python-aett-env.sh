#!/usr/bin/env bash
# A virtual environment with the original Python aett (PyPI `aett` 3.x) and the PostgreSQL
# driver it uses, for the tests of `aett import-python`, which import stores the real package
# wrote. Installs it if missing and prints the path of its Python.
#
#   scripts/python-aett-env.sh     # prints e.g. /tmp/aett-python-venv/bin/python
set -euo pipefail

VENV=${AETT_PYTHON_VENV:-/tmp/aett-python-venv}
AETT_VERSION=3.4.1
PSYCOPG_VERSION=3.3.9

if ! "$VENV/bin/python" -c "import aett, psycopg, sys; sys.exit(0 if __import__('importlib.metadata').metadata.version('aett') == '$AETT_VERSION' else 1)" 2>/dev/null; then
    echo "Installing the Python aett $AETT_VERSION into $VENV." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "aett==$AETT_VERSION" "psycopg[binary]==$PSYCOPG_VERSION"
fi
echo "$VENV/bin/python"
