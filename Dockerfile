# monitor: the daemon in a container. Database and snapshots live in the /data volume.
#   docker build -t monitor .
#   docker run -d --name monitor -v monitor-data:/data monitor
#   docker exec monitor monitor history microsoft-official-blog
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MONITOR_CONFIG=/data/targets.toml

# --build-arg BROWSER=1 adds Debian's Chromium and Playwright, for fetcher = "browser" (a few hundred MB more).
ARG BROWSER=0
RUN if [ "$BROWSER" = 1 ]; then apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-dejavu-core && rm -rf /var/lib/apt/lists/*; fi

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir ".$([ "$BROWSER" = 1 ] && echo '[browser]')" \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin monitor \
 && mkdir -p /data && chown monitor:monitor /data
COPY targets.toml /app/targets.default.toml
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

USER monitor
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 CMD ["monitor", "health"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["run"]
