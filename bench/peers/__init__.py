"""Outside references for the benchmarks, started by them in the same run.

`pinax_site/`: a minimal Django project around pinax-referrals, run from its own
venv (`.venv-peer`, `make peer`) under gunicorn. `starlette_app.py`: a bare
Starlette app, run from the project's venv by uvicorn with `referrals serve`'s settings.
"""
