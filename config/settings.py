"""Django settings, read from the environment.

Every setting has a default that suits a single machine with no servers: a SQLite file,
local media files and Celery in eager mode. Production and CI set DATABASE_URL,
CELERY_BROKER_URL and the rest; README.md lists them all.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-development-key")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

VAR_DIR = Path(env("CSN_VAR_DIR", default=str(BASE_DIR / "var")))

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
    "annotation",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("ATOMIC_REQUESTS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Several processes (web, worker, crowd simulation) share the file in the embedded setup.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("CSN_STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env("CSN_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # The triplet export takes ?format=csv|jsonl itself, so DRF must not read that parameter.
    "URL_FORMAT_OVERRIDE": None,
    "EXCEPTION_HANDLER": "annotation.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CSN annotation platform API",
    "DESCRIPTION": "Conditional triplet tasks for annotators, their judgements, and staff exports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Annotation queue.
CSN_LEASE_SECONDS = env.int("CSN_LEASE_SECONDS", default=600)
CSN_MAX_IMAGE_PIXELS = env.int("CSN_MAX_IMAGE_PIXELS", default=40_000_000)
CSN_MAX_IMAGE_BYTES = env.int("CSN_MAX_IMAGE_BYTES", default=50 * 1024 * 1024)
CSN_CROWD_ID_PARAMETERS = env.list(
    "CSN_CROWD_ID_PARAMETERS", default=["PROLIFIC_PID:prolific", "workerId:mturk"]
)
CSN_CROWD_COMPLETION_CODE = env("CSN_CROWD_COMPLETION_CODE", default="")
CSN_TASK_ORDER_SEED = env.int("CSN_TASK_ORDER_SEED", default=None)

# Training and the active-learning loop.
CSN_MODEL_DIR = Path(env("CSN_MODEL_DIR", default=str(VAR_DIR / "models")))
CSN_PRETRAINED_DIR = Path(env("CSN_PRETRAINED_DIR", default=str(VAR_DIR / "pretrained")))
CSN_TRAIN_SOFT_TIME_LIMIT = env.int("CSN_TRAIN_SOFT_TIME_LIMIT", default=2 * 3600)
CSN_RUN_HEARTBEAT_TIMEOUT = env.int("CSN_RUN_HEARTBEAT_TIMEOUT", default=900)
CSN_RETRAIN_CHECK_SECONDS = env.float("CSN_RETRAIN_CHECK_SECONDS", default=60.0)

# Celery. Without a broker URL, tasks run eagerly in the calling process.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
if CELERY_BROKER_URL.startswith("filesystem://"):
    # A broker without a server, for a single machine: messages are files in a shared folder.
    CSN_BROKER_DIR = Path(env("CSN_BROKER_DIR", default=str(VAR_DIR / "broker")))
    for folder in ("queue", "processed"):
        (CSN_BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CSN_BROKER_DIR / "queue"),
        "data_folder_out": str(CSN_BROKER_DIR / "queue"),
        "processed_folder": str(CSN_BROKER_DIR / "processed"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE = {
    "check-retraining": {"task": "training.tasks.check_retraining", "schedule": CSN_RETRAIN_CHECK_SECONDS},
}

LOG_LEVEL = env("CSN_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "annotation": {"level": LOG_LEVEL},
        "training": {"level": LOG_LEVEL},
    },
}
