#!/usr/bin/env bash
# Issue 17's security and bad-input probe (D4-D16) against a scratch production-like deployment:
# its own PostgreSQL database, its own Redis (started here on a free port), gunicorn with 2 workers,
# DEBUG off, HTTPS-only settings behind a simulated TLS proxy. Usage:
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/facet_probe scripts/probe_security.sh
# The database is dropped and created again; nothing else is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
: "${DATABASE_URL:?set DATABASE_URL to a scratch PostgreSQL database (it is recreated)}"
WORK=$(mktemp -d)
REDIS_PORT=$("$BIN/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
WEB_PORT=$("$BIN/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0 FACET_MEDIA_ROOT=$WORK/media FACET_VAR_DIR=$WORK/var
export DJANGO_DEBUG=0 FACET_HTTPS=1 DJANGO_BEHIND_TLS_PROXY=1 FACET_TRUSTED_PROXY_COUNT=1
export DJANGO_SECRET_KEY=$("$BIN/python" -c "import secrets; print(secrets.token_urlsafe(60))")
export DJANGO_ALLOWED_HOSTS=127.0.0.1
start_redis() { redis-server --port "$REDIS_PORT" --save "" --appendonly no --daemonize yes --pidfile "$WORK/redis.pid" >/dev/null; }
stop_redis() { redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; }
cleanup() { stop_redis; [ -n "${web_pid:-}" ] && kill "$web_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
start_redis

db_name=${DATABASE_URL##*/}
psql "${DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS $db_name" -c "CREATE DATABASE $db_name" >/dev/null
"$BIN/python" manage.py migrate --noinput -v0
"$BIN/python" manage.py collectstatic --noinput -v0
"$BIN/python" manage.py shell -v0 -c "
import hashlib, io, json
from django.core.files.base import ContentFile
from django.contrib.auth import get_user_model
from PIL import Image
from webapp.studies.models import Photo, Role
from webapp.studies.services import comparison_create, membership_set, study_create, subject_create, visit_create
User = get_user_model()
users = {name: User.objects.create_user(name, f'{name}@example.org', 'probe passphrase 2026') for name in
         ('coordinator', 'clinician', 'outsider', 'victim')}
User.objects.create_superuser('root', 'root@example.org', 'probe passphrase 2026')
study = study_create(name='Probe study', creator=users['coordinator'])
membership_set(study=study, user=users['clinician'], role=Role.CLINICIAN, actor=users['coordinator'])
study_create(name='Outsider study', creator=users['outsider'])
subject = subject_create(study=study, code='S-1', actor=users['coordinator'])
for n in range(250):  # more than the API's page cap
    subject_create(study=study, code=f'P-{n:03d}', actor=users['coordinator'])
pre = visit_create(subject=subject, label='=HYPERLINK(\"http://evil\")', role='pre', actor=users['coordinator'])
post = visit_create(subject=subject, label='-2+3', role='post', actor=users['coordinator'])
def photo(visit, shade):
    buffer = io.BytesIO(); Image.new('RGB', (256, 256), (shade, 90, 80)).save(buffer, 'PNG')
    data = buffer.getvalue(); digest = hashlib.sha256(data).hexdigest()
    p = Photo(study=study, visit=visit, view='frontal', content_hash=digest, image_hash=digest,
              source_format='PNG', width=256, height=256, uploaded_by=users['coordinator'])
    p.image.save('photo.png', ContentFile(data), save=False); p.thumbnail.save('t.jpg', ContentFile(data), save=False)
    p.save(); return p
a, b, c = photo(pre, 10), photo(post, 20), photo(pre, 30)
comparison = comparison_create(pre_visit=pre, post_visit=post, actor=users['coordinator'])
world = {'study': study.pk, 'visit': pre.pk, 'delete_photo': c.pk, 'delete_files': [c.image.name, c.thumbnail.name],
         'objects': {'studies': study.pk, 'subjects': subject.pk, 'visits': pre.pk, 'photos': a.pk,
                     'comparisons': comparison.pk}}
open('$WORK/world.json', 'w').write(json.dumps(world))
"
"$BIN/gunicorn" webapp.wsgi --bind "127.0.0.1:$WEB_PORT" --workers 2 --limit-request-line 8190 \
    --log-level warning >"$WORK/gunicorn.log" 2>&1 &
web_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$WEB_PORT/healthz" && break; sleep 0.2; done
status=0
"$BIN/python" scripts/probe_security.py --base "http://127.0.0.1:$WEB_PORT" --world "$WORK/world.json" \
    --media-root "$FACET_MEDIA_ROOT" --redis-stop "redis-cli -p $REDIS_PORT shutdown nosave" \
    --redis-start "redis-server --port $REDIS_PORT --save '' --appendonly no --daemonize yes" || status=$?
echo "Audit trail: $(psql "$DATABASE_URL" -Atc "SELECT string_agg(action || '=' || n, ', ') FROM (SELECT action, count(*) AS n FROM audit_auditevent WHERE action IN ('denied', 'login_failed', 'password_reset') GROUP BY action ORDER BY action) AS counts")"
if grep -q "Internal Server Error" "$WORK/gunicorn.log"; then echo "gunicorn logged a server error:"; grep -A3 "Internal Server Error" "$WORK/gunicorn.log" | head -40; status=1; fi
exit $status
