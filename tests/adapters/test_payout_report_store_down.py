"""A payout whose report store is down: not completed, nothing paid, and a later run completes."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from referrals.adapters.reports.local import LocalReportStore
from referrals.adapters.reports.s3 import S3ReportStore
from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from referrals.domain.errors import PayoutFailed
from referrals.domain.model import ReferralStatus, RunStatus
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.ports import ReportStore
from referrals.services.payouts import get_run, run_payout
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.adapters.conftest import AWS_REGION
from tests.clocks import FixedClock

OCTOBER = Period(2026, 10)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    sql = build_store(f"sqlite:///{tmp_path}/payout.db", migrate=True)
    assert isinstance(sql, SqlStore)
    clock = FixedClock(datetime(2026, 11, 2, tzinfo=UTC))
    code = enroll(sql, clock, "alice").referrer.code
    for n in range(3):
        moment = datetime(2026, 10, 30, tzinfo=UTC)
        sign_up(sql, clock, RuleVersion(), f"u{n}", code, signed_up_at=moment)
    yield sql
    sql.dispose()


def assert_failed_then_completes(
    store: SqlStore, reports: ReportStore, bring_back: Callable[[], None]
) -> None:
    clock = FixedClock(datetime(2026, 11, 2, tzinfo=UTC))
    with pytest.raises(PayoutFailed):
        run_payout(store, reports, clock, OCTOBER)
    assert get_run(store, OCTOBER).status is RunStatus.FAILED
    with store.read() as uow:
        assert uow.referrers.earnings("alice", clock.now()).paid_cents == 0
        assert uow.referrals.search(ReferralStatus.PAID, None, None, 10) == []
    bring_back()
    run = run_payout(store, reports, clock, OCTOBER)
    assert run.status is RunStatus.COMPLETED and run.referral_count == 3
    with store.read() as uow:
        assert uow.referrers.earnings("alice", clock.now()).paid_cents == 3000
    assert reports.get("payouts/2026-10/report.csv") is not None


def test_unwritable_folder(store: SqlStore, tmp_path: Path) -> None:
    root = tmp_path / "reports"
    root.write_text("a file where the report folder should be")
    assert_failed_then_completes(store, LocalReportStore(root), root.unlink)


def test_s3_bucket_unreachable(store: SqlStore, aws_session: boto3.Session) -> None:
    with mock_aws():
        s3 = aws_session.client("s3")

        def bucket_back() -> None:
            config = {"LocationConstraint": AWS_REGION}
            s3.create_bucket(Bucket="payout-reports", CreateBucketConfiguration=config)

        assert_failed_then_completes(store, S3ReportStore(s3, "payout-reports"), bucket_back)
