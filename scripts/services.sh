#!/usr/bin/env bash
# Make sure what the test suite talks to is running: PostgreSQL, Redis, and
# Debian's Chromium for the browser tests. Starts installed-but-stopped
# services; installs Chromium from Debian's packages when missing (needs root).
# A service that cannot be brought up is an error: tests never skip it.
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}

if ! pg_isready -h "$PGHOST" -q 2>/dev/null; then
  echo "PostgreSQL is not answering; starting it"
  if command -v pg_ctlcluster >/dev/null; then
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
  fi
  for _ in $(seq 30); do pg_isready -h "$PGHOST" -q && break; sleep 1; done
  pg_isready -h "$PGHOST" -q || { echo "PostgreSQL is not running on $PGHOST:5432" >&2; exit 1; }
fi

if ! redis-cli -h "$REDIS_HOST" ping >/dev/null 2>&1; then
  echo "Redis is not answering; starting it"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli -h "$REDIS_HOST" ping >/dev/null 2>&1 && break; sleep 1; done
  redis-cli -h "$REDIS_HOST" ping >/dev/null || { echo "Redis is not running on $REDIS_HOST:6379" >&2; exit 1; }
fi

# Chromium, and a CJK font so that screenshots of the Chinese UI are legible.
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "WenQuanYi"; then
  echo "Installing Debian's Chromium and a Chinese font for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi
echo "PostgreSQL, Redis and Chromium are ready."
