"""`api.app.serve_app`, the app each `referrals serve` worker runs: what it built is
frozen, so the collector's full passes no longer walk it (BENCHMARKS.md, issue 27)."""

import gc
from pathlib import Path

import pytest

from referrals.api.app import serve_app
from referrals.bootstrap import build_store


def test_the_served_app_leaves_what_it_built_out_of_the_collectors_walks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/served.db"
    build_store(url, migrate=True).dispose()  # as `serve` migrates before its workers start
    monkeypatch.setenv("REFERRALS_DATABASE_URL", url)
    monkeypatch.setenv("REFERRALS_REPORTS_URL", str(tmp_path / "reports"))
    gc.unfreeze()
    app = serve_app()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the modules, schemas and routes, not a handful
        assert len(gc.get_objects()) < frozen / 10  # what a full collection still walks
    finally:
        gc.unfreeze()
        app.state.services.store.dispose()
