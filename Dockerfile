# monitor: the daemon in a container. Database and snapshots live in the /data volume.
#   docker build -t monitor .
#   docker run -d --name monitor -v monitor-data:/data monitor
#   docker exec monitor monitor history microsoft-official-blog
# --build-arg BASE=IMAGE builds on another Debian-based image with Python 3.11+ and its venv module
# (ci/container.sh builds on a Debian bookworm made with debootstrap, nothing pulled from a registry).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/monitor/bin:$PATH \
    MONITOR_CONFIG=/data/targets.toml

# --build-arg BROWSER=1 adds Debian's Chromium and Playwright, for fetcher = "browser" (a few hundred MB more).
ARG BROWSER=0
# (Not pinned: the distribution's Chromium is taken with its security updates.)
# hadolint ignore=DL3008
RUN if [ "$BROWSER" = 1 ]; then apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-dejavu-core && rm -rf /var/lib/apt/lists/*; fi
# Extras installed (pyproject.toml): postgres, for workers sharing one PostgreSQL (compose.yaml).
ARG EXTRAS=postgres

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
# In a virtualenv of its own: a distribution's Python (the debootstrap base) refuses installs into its own.
# (What is installed is this project, whose pyproject.toml bounds its dependencies.)
# hadolint ignore=DL3013
RUN python3 -m venv /opt/monitor \
 && pip install --no-cache-dir ".[${EXTRAS}$([ "$BROWSER" = 1 ] && echo ',browser')]" \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin monitor \
 && mkdir -p /data && chown monitor:monitor /data
COPY targets.toml /app/targets.default.toml
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

USER 10001
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 CMD ["monitor", "health"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["run"]
