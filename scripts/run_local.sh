#!/usr/bin/env bash
# Start Facet on this machine: migrate, demo content, static files, two Celery workers in the
# background and the Django development server in the foreground. Ctrl-C stops all three.
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

# Two workers: the quick one runs only landmarks and the quality verdict (under a second each), so
# an upload's verdict never waits behind minute-long normality or wrinkle jobs on the other.
# Each also runs the run sweeper (re-sends jobs the broker lost, hands on a dead worker's jobs).
"$BIN/celery" -A workers worker -Q quick --concurrency 1 -n quick@%h -l info \
    >>var/log/celery-quick.log 2>&1 &
quick_pid=$!
"$BIN/celery" -A workers worker -Q cpu,gpu --concurrency 1 -n analysis@%h -l info \
    >>var/log/celery-worker.log 2>&1 &
worker_pid=$!
stop_workers() {
    for pid in "$quick_pid" "$worker_pid"; do
        if kill -0 "$pid" 2>/dev/null; then
            echo "Stopping the Celery worker (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    wait "$quick_pid" "$worker_pid" 2>/dev/null || true
}
trap stop_workers EXIT
trap 'exit 130' INT TERM

echo
echo "Facet is starting at http://$HOST:$PORT/ (log in with the demo account printed above)."
echo "Celery workers: quick queue pid $quick_pid (var/log/celery-quick.log), cpu and gpu queues pid"
echo "$worker_pid (var/log/celery-worker.log). Press Ctrl-C to stop them and the web server."
echo
"$BIN/python" manage.py runserver "$HOST:$PORT"
