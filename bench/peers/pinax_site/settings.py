"""Settings of the peer: the least a pinax-referrals site needs, tuned as a fair operator would.

SQLite in WAL mode with `synchronous=FULL` (the durability `referrals` keeps), one
connection kept for the worker's life (Django's default opens one per request), no
middleware (an API call carries no session, cookie or CSRF token).
"""

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sites",
    "pinax.referrals",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "pinax_site.urls"
SITE_ID = 1
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["PINAX_DB"],
        "CONN_MAX_AGE": None,
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"},
    }
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
