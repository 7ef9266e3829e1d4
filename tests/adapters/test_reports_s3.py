"""S3ReportStore on moto: where the payout report goes on AWS."""

import hashlib
import io
import random
import tempfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from referrals.adapters.reports.s3 import S3ReportStore
from tests.adapters.conftest import AWS_REGION

BUCKET = "referrals-reports-test"
KEY = "payouts/2026-03/report.csv"
CSV = "text/csv; charset=utf-8"


@pytest.fixture
def s3(aws_session: boto3.Session) -> Iterator[Any]:
    with mock_aws():
        client = aws_session.client("s3")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": AWS_REGION}
        )
        yield client


@pytest.fixture
def reports(s3: Any) -> S3ReportStore:
    return S3ReportStore(s3, BUCKET, prefix="reports")


def object_keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


@pytest.mark.parametrize(
    ("prefix", "object_key"),
    [
        ("reports", f"reports/{KEY}"),
        ("/reports/", f"reports/{KEY}"),  # stray slashes do not make "//" or a leading "/"
        ("", KEY),
    ],
)
def test_put_then_get_round_trips_under_the_prefix(s3: Any, prefix: str, object_key: str) -> None:
    reports = S3ReportStore(s3, BUCKET, prefix=prefix)
    body = b"referrer_id,amount_cents\r\nreferrer-7,1500\r\n"

    reports.put(KEY, io.BytesIO(body), CSV)

    assert reports.get(KEY) == body
    # Where it landed matters: operators and the manifest find reports by this key.
    assert object_keys(s3) == [object_key]


def test_object_is_stored_with_content_type_and_server_side_encryption(
    s3: Any, reports: S3ReportStore
) -> None:
    # Payout reports are financial data: encrypted at rest, served as CSV.
    reports.put(KEY, io.BytesIO(b"a,b\n"), CSV)

    head = s3.head_object(Bucket=BUCKET, Key=f"reports/{KEY}")
    assert head["ContentType"] == CSV
    assert head["ServerSideEncryption"] == "AES256"


def test_get_of_a_missing_key_is_none(reports: S3ReportStore) -> None:
    assert reports.get("payouts/1999-01/report.csv") is None


def test_large_report_round_trips_through_a_multipart_upload(
    s3: Any, reports: S3ReportStore
) -> None:
    # ~10 MB is above upload_fileobj's 8 MB threshold, so it goes up in parts; the
    # parts must reassemble into exactly the bytes whose sha256 the manifest records.
    body = random.Random(2026).randbytes(10 * 1024 * 1024)
    reports.put(KEY, io.BytesIO(body), CSV)

    stored = reports.get(KEY)
    assert stored is not None
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(body).hexdigest()
    head = s3.head_object(Bucket=BUCKET, Key=f"reports/{KEY}")
    assert head["ETag"].strip('"').endswith("-2")  # proof it really was a 2-part upload
    # The multipart path must carry the same ExtraArgs as a single PUT.
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == CSV


def test_put_when_the_bucket_is_unreachable_raises(s3: Any) -> None:
    # "S3 down" / misconfigured bucket: put must raise so the payout does not complete
    # (and pay out) without its report.
    reports = S3ReportStore(s3, "no-such-bucket-here", prefix="reports")

    with pytest.raises(ClientError) as raised:
        reports.put(KEY, io.BytesIO(b"report"), CSV)
    assert raised.value.response["Error"]["Code"] == "NoSuchBucket"


def test_get_when_the_bucket_is_unreachable_raises_rather_than_none(s3: Any) -> None:
    # None means "no report yet"; a broken bucket must not be mistaken for that.
    reports = S3ReportStore(s3, "no-such-bucket-here")

    with pytest.raises(ClientError):
        reports.get(KEY)


def test_put_leaves_the_callers_file_open_for_a_second_put(reports: S3ReportStore) -> None:
    # A payout stages its report, then publishes the same temporary file: boto3's
    # upload_fileobj closes what it is given, so the store must lend, not give, it.
    with tempfile.TemporaryFile() as report:
        report.write(b"period,referrer_id\n")
        report.seek(0)
        reports.put("a.csv", report, "text/csv")
        assert not report.closed
        report.seek(0)
        reports.put("b.csv", report, "text/csv")
    assert reports.get("a.csv") == reports.get("b.csv") == b"period,referrer_id\n"


def test_delete_removes_the_object(s3: Any, reports: S3ReportStore) -> None:
    staged = "payouts/staged/2026-03/abc.csv"
    reports.put(staged, io.BytesIO(b"staged"), CSV)
    reports.put(KEY, io.BytesIO(b"published"), CSV)

    reports.delete(staged)

    assert reports.get(staged) is None
    assert object_keys(s3) == [f"reports/{KEY}"]


def test_delete_of_a_missing_key_leaves_no_delete_marker_on_a_versioned_bucket(
    s3: Any, reports: S3ReportStore
) -> None:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    reports.delete("payouts/staged/2026-03/never.csv")
    versions = s3.list_object_versions(Bucket=BUCKET)
    assert versions.get("DeleteMarkers", []) == [] and versions.get("Versions", []) == []
