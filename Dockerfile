# syntax=docker/dockerfile:1
# Two-step Accounts as a container: `docker compose up -d --build` (compose.yaml, docs/deploy.md).
# Three stages; only the last ships: no compiler, no npm, no pip, no tests in the image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# 1. htmx from the npm registry, refused unless its sha384 matches the one pinned in scripts/fetch-htmx.sh.
FROM ${NODE_IMAGE} AS htmx
RUN apt-get update && apt-get install -y --no-install-recommends openssl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/fetch-htmx.sh scripts/fetch-htmx.sh
RUN ./scripts/fetch-htmx.sh

# 2. The app's dependencies, every file hash-checked against requirements-prod.lock (made by `make lock`).
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements-prod.lock /tmp/requirements-prod.lock
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements-prod.lock \
    && /opt/venv/bin/python -m pip uninstall -y pip setuptools

# 3. The image. Run with a read-only root filesystem (compose.yaml does): only instance/ is the app user's.
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    INSTANCE_DIR=/app/instance
WORKDIR /app
COPY --from=deps /opt/venv /opt/venv
COPY alembic.ini ./
COPY webapp ./webapp
COPY templates ./templates
COPY static ./static
COPY --from=htmx /src/static/vendor ./static/vendor
# Bytecode compiled now, as root: at run time nothing under /app but instance/ is writable.
RUN python -m compileall -q webapp && mkdir instance && chown app:app instance && chmod 0700 instance
USER app
EXPOSE 8000
VOLUME ["/app/instance"]
# Liveness only (/healthz); readiness (/readyz: database and schema) is for the proxy and the orchestrator.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# --no-proxy-headers: the app itself believes X-Forwarded-* only from FORWARDED_ALLOW_IPS.
CMD ["uvicorn", "webapp.asgi:app", "--host", "0.0.0.0", "--port", "8000", "--loop", "uvloop", "--http", "httptools", \
     "--no-proxy-headers", "--no-server-header"]
