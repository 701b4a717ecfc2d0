#!/usr/bin/env bash
# Starts the services Emporium's tests and distributed mode need, on loopback, unless
# they already answer: PostgreSQL (5432), NATS with JetStream (4222), Redis (6379).
# Idempotent. Installs a missing server from Debian's packages when run as root.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name port
  for _ in $(seq 1 100); do
    if up "$2"; then echo "services: $1 up on $2"; return 0; fi
    sleep 0.1
  done
  echo "services: $1 did not come up on port $2" >&2
  return 1
}

ensure_pkg() { # binary package
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "services: installing $2" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    else
      echo "services: $1 is missing; install the Debian package $2" >&2
      return 1
    fi
  fi
}

if ! up 5432; then
  ensure_pkg pg_ctlcluster postgresql
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  wait_for postgresql 5432
fi

if ! up 4222; then
  ensure_pkg /usr/sbin/nats-server nats-server
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for nats 4222
fi

if ! up 6379; then
  ensure_pkg redis-server redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis 6379
fi
