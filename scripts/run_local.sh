#!/usr/bin/env bash
# Start Facet on this machine: migrate, demo content, static files, a Celery worker in the
# background and the Django development server in the foreground. Ctrl-C stops both.
# Called by `make run`, which installs .venv and exports the offline/model-cache variables first.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${FACET_HOST:-127.0.0.1}
PORT=${FACET_PORT:-8000}
export DJANGO_DEBUG=${DJANGO_DEBUG:-1}

mkdir -p var/log
"$BIN/python" manage.py migrate --noinput
"$BIN/python" manage.py facet_demo
"$BIN/python" manage.py collectstatic --noinput --verbosity 0

# The worker also runs the run sweeper (re-sends jobs the broker lost, hands on a dead worker's jobs).
"$BIN/celery" -A workers worker -Q cpu,gpu --concurrency 1 -l info >>var/log/celery-worker.log 2>&1 &
worker_pid=$!
stop_worker() {
    if kill -0 "$worker_pid" 2>/dev/null; then
        echo "Stopping the Celery worker (pid $worker_pid)"
        kill -TERM "$worker_pid" 2>/dev/null || true
        wait "$worker_pid" 2>/dev/null || true
    fi
}
trap stop_worker EXIT
trap 'exit 130' INT TERM

echo
echo "Facet is starting at http://$HOST:$PORT/ (log in with the demo account printed above)."
echo "Celery worker pid $worker_pid, log: var/log/celery-worker.log. Press Ctrl-C to stop both."
echo
"$BIN/python" manage.py runserver "$HOST:$PORT"
