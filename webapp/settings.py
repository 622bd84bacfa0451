"""Facet settings, read from the environment with defaults that need no external server.

By default Facet runs on SQLite, a filesystem Celery broker and local media storage, so
`make run` works on a bare machine. Production sets DATABASE_URL, REDIS_URL and, for S3-compatible
storage, FACET_S3_BUCKET.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

from ml.model_names import DLIB_68
from webapp.runs import task_names

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FACET_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """The configured key, else one generated once and kept in var/ (never a key shared by installs)."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()


def _dicom_uid_seed() -> str:
    """The installation's secret from which DICOM UIDs are derived (webapp.exports.dicom): fixed once,
    so a photo keeps its UIDs across exports; secret, so a de-identified UID cannot be traced back."""
    if seed := os.environ.get("FACET_DICOM_UID_SEED"):
        return seed
    seed_file = VAR_DIR / "dicom_uid_seed"
    if not seed_file.exists():
        seed_file.write_text(secrets.token_hex(32))
        seed_file.chmod(0o600)
    return seed_file.read_text().strip()


FACET_DICOM_UID_SEED = _dicom_uid_seed()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "webapp.accounts",
    "webapp.audit",
    "webapp.studies",
    "webapp.runs",
    "webapp.analysis",
    "webapp.labeling",
    "webapp.campaigns",
    "webapp.ratings",
    "webapp.exports",
    "webapp.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "webapp.accounts.two_factor.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "webapp.middleware.NoStoreMiddleware",
    "webapp.audit.context.RequestContextMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.context_processors.facet",
                "webapp.context_processors.worker_banner",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write concurrently: WAL and a lock timeout avoid "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # A file, not memory, so that Celery worker processes started by the tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
OTP_TOTP_ISSUER = os.environ.get("FACET_OTP_ISSUER", "Facet")
LOGIN_REDIRECT_URL = "studies:study_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("FACET_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]

MEDIA_ROOT = Path(os.environ.get("FACET_MEDIA_ROOT", VAR_DIR / "media"))
# Photos are patient data: they are never served from a public URL, only through audited views.
MEDIA_URL = "/media-not-public/"

_s3_bucket = os.environ.get("FACET_S3_BUCKET")
STORAGES = {
    "default": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": _s3_bucket,
                "endpoint_url": os.environ.get("FACET_S3_ENDPOINT_URL") or None,
                "region_name": os.environ.get("FACET_S3_REGION") or None,
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
            },
        }
        if _s3_bucket
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "facet@localhost")

# Transport security. Production (DEBUG off) is HTTPS-only by default: secure cookies, a redirect of
# plain HTTP (except /healthz, for health checks inside the host) and HSTS. FACET_HTTPS=0 serves plain
# HTTP (a trial on localhost); `make run` (DEBUG on) does so too. Behind a TLS-terminating proxy set
# DJANGO_BEHIND_TLS_PROXY=1 (it must set X-Forwarded-Proto) and FACET_TRUSTED_PROXY_COUNT.
FACET_HTTPS = env_bool("FACET_HTTPS", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = FACET_HTTPS
CSRF_COOKIE_SECURE = FACET_HTTPS
CSRF_COOKIE_HTTPONLY = True  # the pages' scripts take the token from the form, never from the cookie
SECURE_SSL_REDIRECT = FACET_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = int(os.environ.get("FACET_HSTS_SECONDS", str(365 * 24 * 3600 if FACET_HTTPS else 0)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("FACET_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading is a commitment to the browsers' lists, not a default: an operator opts in.
SECURE_HSTS_PRELOAD = env_bool("FACET_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp): scripts only from the site's own files, never inline, and no
# framing. Inline style attributes stay allowed (zone colours, registration transforms); they cannot
# run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Uploads: a photo is streamed to a temporary file, never held whole in memory.
FACET_MAX_UPLOAD_BYTES = int(os.environ.get("FACET_MAX_UPLOAD_BYTES", str(40 * 1024 * 1024)))
FACET_MAX_PIXELS = int(os.environ.get("FACET_MAX_PIXELS", str(60_000_000)))
FACET_MIN_SIDE = int(os.environ.get("FACET_MIN_SIDE", "64"))
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 50

# Celery: the broker is Redis when configured, otherwise kombu's filesystem transport in var/.
CELERY_BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
else:
    for _folder in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = False
# Job state lives in the database (AnalysisJob), so Celery's result backend is not needed.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A new pool process loads the warm models (FACET_WARM_MODELS) before it reports up. Celery's default
# 4 s is too short on a busy machine: a child killed mid-job (out of memory, say) was replaced by
# children the pool killed in turn, for ever, and the job never ran again.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = float(os.environ.get("FACET_WORKER_PROC_ALIVE_TIMEOUT", "120"))
# The broker's visibility timeout (4 h) is far longer than any task's hard limit, so a long job
# is never re-delivered to a second worker while the first is still running it.
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("FACET_TASK_SOFT_TIME_LIMIT", "1500"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("FACET_TASK_TIME_LIMIT", "1800"))
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_SEND_TASK_EVENTS = True

# Models each worker process loads when it starts (its queue's models: the GPU worker sets its own).
FACET_WARM_MODELS = env_list("FACET_WARM_MODELS", DLIB_68)
FACET_WORKER_HEARTBEAT_SECONDS = int(os.environ.get("FACET_WORKER_HEARTBEAT_SECONDS", "10"))
# Runs (webapp.runs): a running job's worker writes a heartbeat every FACET_RUN_HEARTBEAT_SECONDS; after
# FACET_RUN_STALE_SECONDS without one the sweeper (every FACET_SWEEP_SECONDS, in each worker) hands it
# to another worker, and re-sends queued jobs the broker does not hold after FACET_RESEND_AFTER_SECONDS.
FACET_RUN_HEARTBEAT_SECONDS = float(os.environ.get("FACET_RUN_HEARTBEAT_SECONDS", "10"))
FACET_RUN_STALE_SECONDS = int(os.environ.get("FACET_RUN_STALE_SECONDS", "90"))
FACET_SWEEP_SECONDS = float(os.environ.get("FACET_SWEEP_SECONDS", "30"))
FACET_RESEND_AFTER_SECONDS = int(os.environ.get("FACET_RESEND_AFTER_SECONDS", "60"))
FACET_DATA_DIR = os.environ.get("FACET_DATA_DIR", "")
# A built background export (webapp.exports) is deleted this many hours after it was built (default 7 days):
# every FACET_EXPORT_PURGE_SECONDS by Celery beat (the `beat` service), or by `manage.py facet_purge_exports`.
FACET_EXPORT_RETENTION_HOURS = int(os.environ.get("FACET_EXPORT_RETENTION_HOURS", str(7 * 24)))
FACET_EXPORT_PURGE_SECONDS = int(os.environ.get("FACET_EXPORT_PURGE_SECONDS", "3600"))
CELERY_BEAT_SCHEDULE = {
    "purge-expired-exports": {
        "task": task_names.PURGE_EXPIRED_EXPORTS,
        "schedule": FACET_EXPORT_PURGE_SECONDS,
        # A purge that waited longer than its interval is superseded by the next one.
        "options": {"expires": FACET_EXPORT_PURGE_SECONDS},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "webapp.api.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "webapp.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "webapp.api.pagination.CappedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "webapp.api.errors.api_exception_handler",
}
FACET_API_MAX_PAGE_SIZE = int(os.environ.get("FACET_API_MAX_PAGE_SIZE", "200"))
FACET_API_TOKEN_TTL_SECONDS = int(os.environ.get("FACET_API_TOKEN_TTL_SECONDS", str(24 * 3600)))

# Log-in and password-reset throttles (webapp/accounts/throttle.py), counted in the audit trail.
FACET_LOGIN_WINDOW_SECONDS = int(os.environ.get("FACET_LOGIN_WINDOW_SECONDS", "900"))
FACET_LOGIN_FAILURES_PER_ACCOUNT = int(os.environ.get("FACET_LOGIN_FAILURES_PER_ACCOUNT", "10"))
FACET_LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("FACET_LOGIN_FAILURES_PER_ADDRESS", "50"))
FACET_PASSWORD_RESET_WINDOW_SECONDS = int(os.environ.get("FACET_PASSWORD_RESET_WINDOW_SECONDS", "3600"))
FACET_PASSWORD_RESETS_PER_EMAIL = int(os.environ.get("FACET_PASSWORD_RESETS_PER_EMAIL", "3"))
FACET_PASSWORD_RESETS_PER_ADDRESS = int(os.environ.get("FACET_PASSWORD_RESETS_PER_ADDRESS", "10"))
# Reverse proxies in front of the web server that append to X-Forwarded-For (0: none; the client is the
# peer). The client's own X-Forwarded-For entries are never trusted (webapp/audit/services.client_ip).
FACET_TRUSTED_PROXY_COUNT = int(os.environ.get("FACET_TRUSTED_PROXY_COUNT", "0"))
# Refused accesses to patient data are audited, at most this many per user a minute.
FACET_DENIED_AUDIT_PER_MINUTE = int(os.environ.get("FACET_DENIED_AUDIT_PER_MINUTE", "30"))
# Who may create studies: "permitted" (site admins and the users they allow on the Users page) or
# "everyone" (any active user). The creator becomes the study's first coordinator.
FACET_STUDY_CREATORS = os.environ.get("FACET_STUDY_CREATORS", "permitted")
if FACET_STUDY_CREATORS not in {"permitted", "everyone"}:
    raise ValueError("FACET_STUDY_CREATORS must be 'permitted' or 'everyone'.")
# Study invitations by e-mail are valid this many days (webapp/studies/invitations.py).
FACET_INVITATION_DAYS = int(os.environ.get("FACET_INVITATION_DAYS", "7"))
# Soft-deleted subjects, visits and photos are purged (with their files) this many days after deletion
# by `manage.py facet_purge_deleted` (run it daily, e.g. from cron).
FACET_DELETED_RETENTION_DAYS = int(os.environ.get("FACET_DELETED_RETENTION_DAYS", "30"))
# A page's view event covers the images the page loads within this many seconds (audit.services).
FACET_PAGE_VIEW_GRANT_SECONDS = int(os.environ.get("FACET_PAGE_VIEW_GRANT_SECONDS", "900"))
SPECTACULAR_SETTINGS = {
    "TITLE": "Facet API",
    "DESCRIPTION": "Studies, subjects, visits, photos, analysis jobs and results of Facet.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and Swagger UI describe patient-data endpoints: members only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from the sidecar package's static files: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "PhotoViewEnum": "webapp.studies.models.PhotoView",
        "AnalysisKindEnum": "webapp.analysis.kinds.AnalysisKind",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("FACET_LOG_LEVEL", "INFO")},
}
