#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

# tests/test_postgres.py runs a throwaway PostgreSQL server: it needs the server binaries
# (initdb, pg_ctl) on PATH or in Debian's /usr/lib/postgresql/<version>/bin.
have_postgres() {
    { command -v initdb && command -v pg_ctl; } >/dev/null 2>&1 && return 0
    local bindir
    for bindir in /usr/lib/postgresql/*/bin; do
        [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] && return 0
    done
    return 1
}
if ! have_postgres; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "run.sh: installing PostgreSQL (Debian package 'postgresql') for tests/test_postgres.py" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    else
        echo "run.sh: PostgreSQL server binaries (initdb, pg_ctl) not found and cannot install them" \
             "(needs root and apt-get): tests/test_postgres.py will fail" >&2
    fi
fi

# tests/test_web_browser.py and tests/test_browser.py (fetcher = "browser") drive Debian's Chromium
# headless through Playwright's Python package (which never downloads a browser of its own here);
# $CHROMIUM may name another Chromium binary.
if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "run.sh: installing Chromium (Debian package 'chromium') for tests/test_web_browser.py" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
    else
        echo "run.sh: /usr/bin/chromium not found and cannot install it (needs root and apt-get):" \
             "tests/test_web_browser.py will fail (or set CHROMIUM to a Chromium binary)" >&2
    fi
fi

# tests/test_hostile_ssrf.py makes a network namespace (iproute2's `ip netns`), so that redirects
# to every address class are real yet no packet can leave it.
if ! command -v ip >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing iproute2 for tests/test_hostile_ssrf.py" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends iproute2 >/dev/null
fi

python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"

# tests/test_evidence.py replays an export with pywb. pywb requires brotlipy, an old binding
# whose `brotli` package hides the real brotli module (Google's, which monitor decodes with):
# pywb is installed without it, and with every other requirement it declares.
if ! python3 -c "import pywb" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --no-deps "pywb>=2.8,<3"
    python3 -m pip install --quiet --disable-pip-version-check $(python3 -c "
from importlib.metadata import requires
print(' '.join(repr(r.split(';')[0].replace(' ', '')) for r in requires('pywb')
               if 'extra ==' not in r and not r.lower().startswith('brotlipy')))" | tr -d "'")
fi

# tests/test_timestamps.py runs Webrecorder's WACZ signing server (the authsign package) on
# loopback. It is a server of its own that monitor only talks to, not a library monitor uses:
# it lives in a virtualenv of its own, out of monitor's environment.
AUTHSIGN_VENV=tests/.cache/authsign-venv
if ! "$AUTHSIGN_VENV/bin/python" -c "import authsign" 2>/dev/null; then
    python3 -m venv "$AUTHSIGN_VENV"
    "$AUTHSIGN_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "authsign==0.6.1"
fi
# The whole suite (no arguments) also builds and runs the container image with podman, and
# compose.yaml with podman-compose, nothing pulled from a registry (ci/container.sh; a few minutes:
# debootstrap and the images' package installs). It needs root; MONITOR_SKIP_CONTAINER=1 skips it.
if [ $# -eq 0 ] && [ "${MONITOR_SKIP_CONTAINER:-}" != 1 ]; then
    if [ "$(id -u)" = 0 ]; then
        bash ci/container.sh
    else
        echo "run.sh: not root: ci/container.sh (the container image and compose.yaml) not run" >&2
    fi
fi
exec python3 -m pytest "$@"
