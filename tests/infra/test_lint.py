"""cfn-lint and checkov on the synthesized template: zero errors, zero failed checks.

Skips live in the template itself (resource `Metadata.checkov.skip`), each with
its reason, so they are reviewed with the code that needs them.
"""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@pytest.fixture(scope="module")
def linters(template_file: Path) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Both linters started at once; each test waits for its own."""
    started: dict[str, subprocess.Popen[str]] = {}
    if CFN_LINT.exists():
        started["cfn-lint"] = subprocess.Popen(
            [str(CFN_LINT), "--non-zero-exit-code", "error", str(template_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    if CHECKOV.exists():
        started["checkov"] = subprocess.Popen(
            [
                str(CHECKOV),
                "-f",
                str(template_file),
                "--framework",
                "cloudformation",
                "--skip-download",
                "--compact",
                "--quiet",
                "-o",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    yield started
    for process in started.values():  # a test deselected with -k left it running
        if process.poll() is None:
            process.kill()
        process.communicate()


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout, stderr or ""


def test_cfn_lint_finds_no_error(linters: dict[str, subprocess.Popen[str]]) -> None:
    if "cfn-lint" not in linters:
        pytest.fail(f"cfn-lint is not installed next to {sys.executable}: run `make install`")
    code, output, _ = _finish(linters["cfn-lint"])
    assert code == 0, output


def _checkov_report(stdout: str) -> dict[str, Any]:
    report = json.loads(stdout)
    # One framework gives one report; checkov answers a list when it ran several.
    if isinstance(report, list):
        (report,) = [r for r in report if r.get("check_type") == "cloudformation"]
    assert isinstance(report, dict)
    return report


def test_checkov_has_no_failed_check(linters: dict[str, subprocess.Popen[str]]) -> None:
    if "checkov" not in linters:
        pytest.fail(f"checkov is not installed at {CHECKOV}: run `make checkov`")
    code, stdout, stderr = _finish(linters["checkov"])
    report = _checkov_report(stdout)
    failed = report.get("results", {}).get("failed_checks", [])
    summary = report["summary"]
    assert [(f["check_id"], f["resource"], f["check_name"]) for f in failed] == []
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100  # it did check the template
    assert code == 0, stderr


def test_every_checkov_skip_gives_its_reason(template_json: dict[str, Any]) -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in template_json["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert skip["id"].startswith("CKV"), logical_id
        assert len(skip.get("comment", "")) > 40, (logical_id, skip)


def test_checkov_skips_are_only_the_reviewed_ones(template_json: dict[str, Any]) -> None:
    skipped = {
        (resource["Type"], skip["id"])
        for resource in template_json["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert skipped == {
        # The service authenticates its own bearer API keys.
        ("AWS::ApiGateway::Method", "CKV_AWS_59"),
        # Per-caller, mostly-write responses must not be cached.
        ("AWS::ApiGateway::Stage", "CKV_AWS_120"),
        # API and payout functions are invoked synchronously: a DLQ never fires.
        ("AWS::Lambda::Function", "CKV_AWS_116"),
        # No VPC: the functions only call AWS APIs.
        ("AWS::Lambda::Function", "CKV_AWS_117"),
        # The access-log bucket does not log itself.
        ("AWS::S3::Bucket", "CKV_AWS_18"),
    }
