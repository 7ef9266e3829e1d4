"""A Django project whose one route signs a new user up with a pinax-referrals code.

Runs from `.venv-peer` (Django, pinax-referrals, gunicorn), never from the project's
venv: `bench/signup_peers.py` starts it with `--chdir bench/peers`.
"""
