"""Django settings, read from the environment.

With nothing set, the app runs on the embedded default: SQLite, a filesystem
Celery broker under ``var/``, DEBUG on, and a throwaway secret. Setting
``GOVERNANCE_ENV=production`` turns on every production safeguard and refuses
to start without a real ``SECRET_KEY`` and ``ALLOWED_HOSTS``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

# Django's generic classes (ModelAdmin, ModelForm, ...) accept type parameters at run time too,
# so the admin and forms are typed under mypy --strict.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_words(name: str) -> list[str]:
    """A list split on commas or whitespace (secrets never contain either)."""
    return os.environ.get(name, "").replace(",", " ").split()


# --- Mode -------------------------------------------------------------------
GOVERNANCE_ENV = env_str("GOVERNANCE_ENV", "development")
if GOVERNANCE_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("GOVERNANCE_ENV must be 'development' or 'production'")
PRODUCTION = GOVERNANCE_ENV == "production"

VAR_DIR = Path(env_str("GOVERNANCE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite file, broker folders, dev keys

_DEV_SECRET = "dev-insecure-secret-key-do-not-use-in-production-0123456789abcdef"
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
if PRODUCTION and (not SECRET_KEY or SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured("SECRET_KEY must be set to a real secret in production")
# Old secrets still accepted when checking (never when making) sessions' auth hashes, the
# messages cookie and django.core.signing values: a rotation logs nobody out (docs/recovery.md).
SECRET_KEY_FALLBACKS = env_words("SECRET_KEY_FALLBACKS")

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG cannot be on in production")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the hosts this app serves in production")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- Applications -----------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    # Before django.contrib.auth: its createsuperuser command (through the services) wins.
    "accounts",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "pgtrigger",
    "governance",
    "registry",
    "reviews",
    "rollouts",
]

MIDDLEWARE = [
    "governance.kernel.request_metrics.RequestLatencyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "governance.kernel.security.RefusalLogMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "governance.kernel.events.context.ChannelMiddleware",
    "governance.kernel.views.DomainErrorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "governance.urls"
WSGI_APPLICATION = "governance.wsgi.application"
ASGI_APPLICATION = "governance.asgi.application"

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
                "csp.context_processors.nonce",
                "reviews.context_processors.notifications",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'governance.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60 if PRODUCTION else 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process, the worker and beat share the file without
    # "database is locked" errors; the test database is a file too, so a
    # real Celery worker started by the integration tests can see it.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # One file per test run (its process id), so two runs side by side do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-governance-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Authentication ---------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): lock a username+IP pair after repeated failures.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env_int("AXES_PROXY_COUNT", 0) or None
AXES_VERBOSE = False

# Personal API tokens
API_TOKEN_DEFAULT_EXPIRY_DAYS = env_int("API_TOKEN_DEFAULT_EXPIRY_DAYS", 90)
API_TOKEN_MAX_EXPIRY_DAYS = env_int("API_TOKEN_MAX_EXPIRY_DAYS", 366)
#: Service tokens: a verification is cached in the process until the runtime generation
#: changes (every event, a revocation included) and at most this many seconds.
SERVICE_TOKEN_CACHE_SECONDS = env_int("SERVICE_TOKEN_CACHE_SECONDS", 5)

# --- Security headers -------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12)
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# Content-Security-Policy (django-csp): everything comes from this app, no CDN,
# no inline script or style.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Internationalisation ---------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# In development WhiteNoise serves straight from the source folders (no collectstatic).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Email ------------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "governance@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
#: Where the file-based email backend writes (development, tests).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
#: The email outbox: a notification not stamped sent this long after it was last queued is
#: queued again (every NOTIFICATION_OUTBOX_INTERVAL_SECONDS, by beat).
NOTIFICATION_EMAIL_RETRY_AFTER_SECONDS = env_int("NOTIFICATION_EMAIL_RETRY_AFTER_SECONDS", 60)
NOTIFICATION_OUTBOX_INTERVAL_SECONDS = env_int("NOTIFICATION_OUTBOX_INTERVAL_SECONDS", 60)
#: Base address put in front of links in emails.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

# --- Reviews ------------------------------------------------------------------
#: How long a password confirmation lets a person sign off without asking again.
REVIEWS_REAUTH_SECONDS = env_int("REVIEWS_REAUTH_SECONDS", 300)
#: Passkey (WebAuthn) sign-off. The relying party id is the site's domain (no port, no
#: scheme): empty means the host of the request (which ALLOWED_HOSTS already restricts).
#: WEBAUTHN_ORIGINS lists the origins a browser may sign at; empty means the request's own.
WEBAUTHN_RP_ID = env_str("WEBAUTHN_RP_ID", "")
WEBAUTHN_RP_NAME = env_str("WEBAUTHN_RP_NAME", "AI governance registry")
WEBAUTHN_ORIGINS = env_list("WEBAUTHN_ORIGINS", [])
#: How long a WebAuthn challenge (registration or sign-off) can be answered.
WEBAUTHN_CHALLENGE_SECONDS = env_int("WEBAUTHN_CHALLENGE_SECONDS", 300)
#: Ask the authenticator to verify the user (PIN, biometrics) and refuse assertions without it.
WEBAUTHN_REQUIRE_USER_VERIFICATION = env_bool("WEBAUTHN_REQUIRE_USER_VERIFICATION", True)
#: Whether the stage criteria refuse a move (a promotion, a stage change) when neither the tenant
#: nor the platform default has saved criteria of its own; False makes them advisory (the
#: checklist is shown, nothing is refused). A saved policy's own ``enforced`` wins.
LIFECYCLE_ENFORCED_DEFAULT = env_bool("LIFECYCLE_ENFORCED_DEFAULT", True)

# --- Waivers, deprecation, retirement, post-mortems ---------------------------
#: A waiver this close to its expiry is "expiring soon", and its owner is alerted.
WAIVER_EXPIRING_SOON_DAYS = env_int("WAIVER_EXPIRING_SOON_DAYS", 7)
#: The longest a waiver (or a renewal) may run; a longer exception needs a new decision.
WAIVER_MAX_DAYS = env_int("WAIVER_MAX_DAYS", 90)
#: The shortest grace period between deprecating a version and removing it.
DEPRECATION_MIN_GRACE_DAYS = env_int("DEPRECATION_MIN_GRACE_DAYS", 7)
#: How long a retired (simulation-only) version's evaluation reports and provenance are kept.
EVIDENCE_RETENTION_DAYS = env_int("EVIDENCE_RETENTION_DAYS", 7 * 365)
#: How often beat runs the governance sweep (waiver alerts, due removals, overdue post-mortems).
GOVERNANCE_SWEEP_INTERVAL_SECONDS = env_int("GOVERNANCE_SWEEP_INTERVAL_SECONDS", 900)

# --- Backups and recovery proof ---------------------------------------------
#: Where beat's daily backup is written (``backup-<UTC time>`` folders or archives); ``drill run``
#: restores the newest one found here.
BACKUP_DIR = Path(env_str("BACKUP_DIR", str(VAR_DIR / "backups")))
#: When beat takes the daily backup, in UTC.
BACKUP_HOUR = env_int("BACKUP_HOUR", 2)
BACKUP_MINUTE = env_int("BACKUP_MINUTE", 30)
#: How many of the newest complete backups in BACKUP_DIR are kept after a scheduled one passes.
BACKUP_KEEP = env_int("BACKUP_KEEP", 7)
#: The sweep alerts when the newest passed backup, drill or rehearsal (per slot) is older.
BACKUP_STALE_HOURS = env_int("BACKUP_STALE_HOURS", 36)
DRILL_STALE_DAYS = env_int("DRILL_STALE_DAYS", 90)
REHEARSAL_STALE_DAYS = env_int("REHEARSAL_STALE_DAYS", 90)
if not (0 <= BACKUP_HOUR <= 23 and 0 <= BACKUP_MINUTE <= 59):
    raise ImproperlyConfigured("BACKUP_HOUR must be 0-23 and BACKUP_MINUTE 0-59 (UTC)")
for _name in ("BACKUP_KEEP", "BACKUP_STALE_HOURS", "DRILL_STALE_DAYS", "REHEARSAL_STALE_DAYS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1")

# --- Signing keys (used by the event log and the registry) ------------------
# A directory of Ed25519 keys, or a single key given inline in the environment.
SIGNING_KEY_DIR = Path(env_str("SIGNING_KEY_DIR", str(VAR_DIR / "keys")))
SIGNING_KEY = env_str("SIGNING_KEY")
# Without an active key, development generates one on first use; production refuses to write.
SIGNING_KEY_AUTOGENERATE = env_bool("SIGNING_KEY_AUTOGENERATE", default=not PRODUCTION)
CHECKPOINT_INTERVAL_SECONDS = env_int("CHECKPOINT_INTERVAL_SECONDS", 300)
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", False)
# A verification run saves its progress every this many events.
VERIFY_PROGRESS_EVERY = env_int("VERIFY_PROGRESS_EVERY", 10_000)

# --- Registry ---------------------------------------------------------------
# Uploaded version files live in a content-addressed store (sha256/ab/abcd...).
REGISTRY_BLOB_DIR = Path(env_str("REGISTRY_BLOB_DIR", str(VAR_DIR / "blobs")))
REGISTRY_MAX_FILE_BYTES = env_int("REGISTRY_MAX_FILE_BYTES", 50 * 1024 * 1024)
REGISTRY_MAX_TEXT_BYTES = env_int("REGISTRY_MAX_TEXT_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REGISTRY_MAX_TEXT_BYTES * 3

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + ([] if PRODUCTION else ["rest_framework.renderers.BrowsableAPIRenderer"]),
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "governance.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AI Governance Registry API",
    "DESCRIPTION": (
        "Register, review, promote and audit AI artifacts. Authenticate scripts and CI "
        "with a personal token, `Authorization: Bearer gov_…` (see `accounts token`); the "
        "runtime endpoints take a tenant's service token, `Authorization: Bearer gsv_…` "
        "(see `accounts service-token`)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "accounts.choices.Role",
        "ImpactEnum": "registry.choices.ImpactChoice",
        "RequirementEnum": "reviews.choices.Requirement",
    },
}

# --- Celery -----------------------------------------------------------------
# --- Runtime selection and rollouts (docs/rollouts.md) ---
#: The tenant whose artifacts and applications every tenant may select (the shared namespace).
PLATFORM_TENANT_SLUG = env_str("PLATFORM_TENANT_SLUG", "platform")
#: A flag is announced to its owner this many days before it expires.
ROLLOUT_FLAG_WARNING_DAYS = env_int("ROLLOUT_FLAG_WARNING_DAYS", 7)
#: The longest a feature flag may live ("feature flags must be temporary").
ROLLOUT_FLAG_MAX_DAYS = env_int("ROLLOUT_FLAG_MAX_DAYS", 90)
#: Seconds between rollout controller cycles (Celery beat).
ROLLOUT_CONTROLLER_INTERVAL_SECONDS = env_int("ROLLOUT_CONTROLLER_INTERVAL_SECONDS", 30)
#: Telemetry (docs/rollouts.md): the width of a raw counter bucket, in seconds.
TELEMETRY_BUCKET_SECONDS = env_int("TELEMETRY_BUCKET_SECONDS", 60)
#: Raw telemetry rows older than this are folded into hourly rows by the sweep.
TELEMETRY_RAW_RETENTION_HOURS = env_int("TELEMETRY_RAW_RETENTION_HOURS", 48)
#: The most rows one telemetry batch may carry (a larger batch is refused whole).
TELEMETRY_MAX_BATCH_ROWS = env_int("TELEMETRY_MAX_BATCH_ROWS", 5000)
#: How far ahead of the server's clock a bucket may start (clock skew), in seconds.
TELEMETRY_MAX_FUTURE_SECONDS = env_int("TELEMETRY_MAX_FUTURE_SECONDS", 300)
#: Canary analysis (rollouts/analysis.py, docs/rollouts.md): the false-alarm budget of the
#: sequential tests on count metrics over a rollout's whole life, split over the metrics.
ROLLOUT_ANALYSIS_ALPHA = float(env_str("ROLLOUT_ANALYSIS_ALPHA", "0.05"))
#: The same test on request counts: a traffic split off the configured weight pauses.
ROLLOUT_SRM_ALPHA = float(env_str("ROLLOUT_SRM_ALPHA", "0.001"))
#: ... applied once the current step holds this many requests (both arms): a tiny first step is
#: not paused by a few requests from one sticky subject (docs/rollouts.md).
ROLLOUT_SRM_MIN_REQUESTS = env_int("ROLLOUT_SRM_MIN_REQUESTS", 1000)
#: A canary step advances no sooner than this many seconds after it began ...
ROLLOUT_STEP_MIN_SECONDS = env_int("ROLLOUT_STEP_MIN_SECONDS", 600)
#: ... and with at least this many canary requests in the step.
ROLLOUT_STEP_MIN_REQUESTS = env_int("ROLLOUT_STEP_MIN_REQUESTS", 200)
#: Fewer canary requests than the minimum this long after a step began: paused, "insufficient data".
ROLLOUT_DATA_DEADLINE_SECONDS = env_int("ROLLOUT_DATA_DEADLINE_SECONDS", 1800)
#: No telemetry received for this long: paused ("telemetry stopped").
ROLLOUT_TELEMETRY_STALE_SECONDS = env_int("ROLLOUT_TELEMETRY_STALE_SECONDS", 300)
#: Clients still reporting an older runtime snapshot this long after a step began: paused.
ROLLOUT_SNAPSHOT_LAG_SECONDS = env_int("ROLLOUT_SNAPSHOT_LAG_SECONDS", 300)
#: The controller advances a canary step that passed on its own (False: an administrator does).
ROLLOUT_AUTO_ADVANCE = env_bool("ROLLOUT_AUTO_ADVANCE", True)
#: Active means watched (docs/rollouts.md): the controller downgrades an active version whose
#: production telemetry breaks the canary analysis' count tests or change gates. Off: it only
#: reports (the readiness criteria still read it).
ROLLOUT_AUTO_DOWNGRADE = env_bool("ROLLOUT_AUTO_DOWNGRADE", True)
#: The window of an active version's telemetry the watch judges, in seconds.
ROLLOUT_WATCH_WINDOW_SECONDS = env_int("ROLLOUT_WATCH_WINDOW_SECONDS", 3600)
#: Fewer requests than this in the window: nothing is judged (one bad request downgrades nothing).
ROLLOUT_WATCH_MIN_REQUESTS = env_int("ROLLOUT_WATCH_MIN_REQUESTS", 200)
#: A deployment drift episode (a client reporting another hash) ends when matching reports
#: arrive and no mismatching one came for this many seconds (pods of one fleet don't flap it).
TELEMETRY_DRIFT_RESOLVE_SECONDS = env_int("TELEMETRY_DRIFT_RESOLVE_SECONDS", 300)
#: Where the runtime generation file lives when REDIS_URL is not set (cache invalidation).
#: With REDIS_URL, a process re-reads the generation at most this often (its own changes at once).
RUNTIME_GENERATION_MAX_AGE_MS = env_int("RUNTIME_GENERATION_MAX_AGE_MS", 250)
RUNTIME_GENERATION_FILE = env_str("RUNTIME_GENERATION_FILE", str(VAR_DIR / "runtime-generation"))

REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_DIR = Path(env_str("CELERY_BROKER_DIR", str(VAR_DIR / "broker")))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    # No server needed: kombu's filesystem transport keeps messages as files.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
HEARTBEAT_INTERVAL_SECONDS = env_int("HEARTBEAT_INTERVAL_SECONDS", 30)
# /readyz calls the worker stale when its last heartbeat is older than this.
HEARTBEAT_STALE_AFTER_SECONDS = env_int(
    "HEARTBEAT_STALE_AFTER_SECONDS", max(3 * HEARTBEAT_INTERVAL_SECONDS, 90)
)
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {
        "task": "governance.tasks.heartbeat",
        "schedule": float(HEARTBEAT_INTERVAL_SECONDS),
        "options": {"expires": float(HEARTBEAT_INTERVAL_SECONDS)},
    },
    "checkpoint": {
        "task": "governance.tasks.checkpoint",
        "schedule": float(CHECKPOINT_INTERVAL_SECONDS),
        "options": {"expires": float(CHECKPOINT_INTERVAL_SECONDS)},
    },
    "governance-sweep": {
        "task": "governance.tasks.sweep",
        "schedule": float(GOVERNANCE_SWEEP_INTERVAL_SECONDS),
        "options": {"expires": float(GOVERNANCE_SWEEP_INTERVAL_SECONDS)},
    },
    "rollouts-controller": {
        "task": "rollouts.tasks.rollouts_controller_tick",
        "schedule": float(ROLLOUT_CONTROLLER_INTERVAL_SECONDS),
        "options": {"expires": float(ROLLOUT_CONTROLLER_INTERVAL_SECONDS)},
    },
    "email-outbox": {
        "task": "governance.tasks.email_outbox",
        "schedule": float(NOTIFICATION_OUTBOX_INTERVAL_SECONDS),
        "options": {"expires": float(NOTIFICATION_OUTBOX_INTERVAL_SECONDS)},
    },
    # Daily, at BACKUP_HOUR:BACKUP_MINUTE UTC (CELERY_TIMEZONE); a late worker still takes it.
    "backup": {
        "task": "governance.tasks.backup",
        "schedule": crontab(hour=str(BACKUP_HOUR), minute=str(BACKUP_MINUTE)),
    },
}

# --- Logging ----------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
