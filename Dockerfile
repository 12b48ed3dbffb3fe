# reconciler daemon image: `docker build -t reconciler .`
#   docker run -v "$PWD/specs:/specs:ro" -v reconciler-state:/state -p 127.0.0.1:9464:9464 reconciler
# Credentials come as env vars or files mounted under /run/secrets ({env: …}/{file: …} refs),
# or as $CREDENTIALS_DIRECTORY/<name> for {credential: …} refs.
# Replicas sharing a PostgreSQL state (docs/high-availability.md): pass the URL and the key
# file by environment, the password and key as mounted files, e.g.
#   -e RECONCILER_STATE_URL='postgresql://reconciler@db/reconciler?password_file=/run/secrets/state-db-password'
#   -e RECONCILER_STATE_KEY_FILE=/run/secrets/state-key
# (no RECONCILER_REPLICA_NAME: the default, reconciler@<container id>:1, is already unique; a
# -e RECONCILER_REPLICA_NAME="$(hostname)" would give every container on one host the same name)
# EXTRAS picks the SDKs baked in: "all" (default), or e.g. "aws" for a much smaller image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=all
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
RUN python -m venv /opt/reconciler \
 && /opt/reconciler/bin/pip install --no-compile ".[${EXTRAS}]" \
 && find /opt/reconciler -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="reconciler" \
      org.opencontainers.image.description="GitOps reconciliation daemon for secrets"
RUN groupadd --system --gid 10001 reconciler \
 && useradd --system --uid 10001 --gid reconciler --home-dir /state --no-create-home --shell /usr/sbin/nologin reconciler \
 && install -d -o 10001 -g 10001 -m 0700 /state \
 && install -d -m 0755 /specs
COPY --from=build /opt/reconciler /opt/reconciler
ENV PATH=/opt/reconciler/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RECONCILER_SPECS=/specs \
    RECONCILER_STATE_DIR=/state \
    RECONCILER_LISTEN=0.0.0.0:9464
VOLUME ["/specs", "/state"]
EXPOSE 9464
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4).status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["reconciler", "run"]
# Docker waits 10 s after SIGTERM before SIGKILL: finish (or abandon) reconciles within 8 s
CMD ["/specs", "--shutdown-timeout", "8"]
