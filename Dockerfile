# One image for every process of the service:
#   web (default):  docker run --env-file .env -p 8000:8000 saas-backend
#   worker:         docker run --env-file .env --no-healthcheck saas-backend python worker.py
#   migrations:     docker run --env-file .env --rm saas-backend flask db upgrade
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so that code changes do not reinstall them.
# The pinned runtime dependencies all have manylinux wheels (checked for amd64): no compiler needed.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN pybabel compile -d webapp/translations \
    && useradd --system --uid 10001 --create-home --home-dir /home/app --shell /usr/sbin/nologin app \
    && mkdir -p instance \
    && chown app:app instance

# The code stays root-owned and read-only for the service; only instance/ is writable.
USER app

ENV APP_ENV=production \
    FLASK_APP=wsgi \
    WEB_CONCURRENCY=2 \
    WEB_THREADS=4

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=4)"]

# No ENTRYPOINT: `python worker.py` or `flask db upgrade` replace this command as they are.
CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:8000 --workers \"$WEB_CONCURRENCY\" --threads \"$WEB_THREADS\" --preload --access-logfile - --error-logfile - wsgi:app"]
