"""Migrate the peer's database and seed its referrers: users r00000.. with codes C00000..

The same codes as `bench/signup_http.py` seeds, so one wrk script drives both.

    PINAX_DB=/tmp/x.db python -m pinax_site.seed 10000   (from bench/peers, in .venv-peer)
"""

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pinax_site.settings")
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from pinax.referrals.models import Referral  # noqa: E402


def main(count: int) -> None:
    call_command("migrate", verbosity=0)
    users = User.objects.bulk_create(
        [User(username=f"r{n:05d}", password="!") for n in range(count)], batch_size=2000
    )
    Referral.objects.bulk_create(
        [Referral(user=user, code=f"C{n:05d}", redirect_to="/") for n, user in enumerate(users)],
        batch_size=2000,
    )
    print(Referral.objects.count())


if __name__ == "__main__":
    main(int(sys.argv[1]))
