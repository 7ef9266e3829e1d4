"""bootstrap.LazyClient: a boto3 client made by its first call, once."""

import io
import threading
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from referrals import bootstrap
from referrals.bootstrap import LazyClient, build_reports

REGION = "us-east-2"


def test_building_an_s3_report_store_makes_no_client_until_it_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket="reports", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        reports = build_reports("s3://reports/payouts")
        client = reports.client  # type: ignore[attr-defined]
        assert isinstance(client, LazyClient) and not client.loaded
        reports.put("2026-10/report.csv", io.BytesIO(b"period\n"), "text/csv")
        assert client.loaded
        assert reports.get("2026-10/report.csv") == b"period\n"


def test_threads_calling_first_at_once_make_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def slow_client(service: str, region: str | None = None) -> Any:
        made.append(service)
        time.sleep(0.05)  # long enough for every thread to arrive while it is made
        return object()

    monkeypatch.setattr(bootstrap, "_boto3_client", slow_client)
    client = LazyClient("sns", "us-east-2")
    start = threading.Barrier(8)

    def first_call() -> None:
        start.wait()
        client.load()

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == ["sns"]
