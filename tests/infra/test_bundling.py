"""The Lambda asset: what is hashed, how it is installed, and the asset `cdk synth` builds.

The module's fixture synthesizes the stack with bundling on, as `cdk synth` does:
uv installs requirements-lambda.lock's wheels (from its cache, or PyPI the first
time) and a CPython 3.12 compiles the byte code. The handlers are then imported
from that folder by a CPython 3.12, as Lambda does.
"""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import ASSET_EXCLUDE
from infra.lambda_asset import (
    LOCK,
    PROJECT_ROOT,
    SERVICES,
    SIZE_LIMIT_BYTES,
    install_command,
    lambda_python,
    size_bytes,
)
from tests.infra.conftest import FUNCTIONS, PREFIX, find

# What the Lambda functions never need: the server, SQL, the CLI, the webhook notifier.
NOT_ON_LAMBDA = (
    "alembic",
    "httpx",
    "psycopg",
    "psycopg_binary",
    "pygments",
    "rich",
    "sqlalchemy",
    "standardwebhooks",
    "typer",
    "uvicorn",
    "uvloop",
)


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The functions' code folder in the cloud assembly `cdk synth` writes."""
    from aws_cdk import App

    from infra import app

    outdir = tmp_path_factory.mktemp("cdk.out")
    cdk = App(context=app.cdk_context(), outdir=str(outdir))
    stack = app.build(cdk)
    assembly = cdk.synth()
    template = assembly.get_stack_by_name(stack.stack_name).template
    keys = set()
    for short in FUNCTIONS:
        _, function = find(template, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{short}")
        keys.add(function["Properties"]["Code"]["S3Key"])
    (key,) = keys  # one asset for the three functions
    folder = Path(assembly.directory) / f"asset.{key.removesuffix('.zip')}"
    assert folder.is_dir()
    return folder


def test_the_asset_hashes_only_the_code_and_the_dependency_pins(tmp_path: Path) -> None:
    from aws_cdk import CopyOptions, FileSystem

    FileSystem.copy_directory(str(PROJECT_ROOT), str(tmp_path), CopyOptions(exclude=ASSET_EXCLUDE))
    assert {p.name for p in tmp_path.iterdir()} == {LOCK, "src"}
    assert {p.name for p in (tmp_path / "src").iterdir()} == {"referrals"}
    assert (tmp_path / "src" / "referrals" / "aws" / "payout.py").is_file()
    assert not [p for p in tmp_path.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]


def test_the_lock_pins_the_lambda_extra_alone() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["lambda"]
    pins = {
        line.split("==")[0]
        for line in (PROJECT_ROOT / LOCK).read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert {requirement.split(">=")[0].split("[")[0] for requirement in extra} <= pins
    assert not pins & {"sqlalchemy", "alembic", "psycopg", "uvicorn", "typer", "rich", "httpx"}


def test_uv_installs_the_locked_linux_cpython_312_wheels_only(tmp_path: Path) -> None:
    command = install_command(tmp_path)
    joined = " ".join(command)
    assert command[:5] == [sys.executable, "-m", "uv", "pip", "install"]
    assert f"--target {tmp_path}" in joined
    assert "--python-version 3.12" in joined
    assert "--python-platform x86_64-manylinux_2_28" in joined
    assert "--only-binary :all:" in joined
    assert "--no-deps" in command  # the lock is complete: nothing resolved at bundling
    assert command[-2:] == ["-r", str(PROJECT_ROOT / LOCK)]


def test_the_asset_fits_in_30_mb_unzipped(asset: Path) -> None:
    assert size_bytes(asset) <= SIZE_LIMIT_BYTES


def test_the_asset_holds_nothing_of_the_server_sql_or_cli(asset: Path) -> None:
    top_level = {p.name.removesuffix(".pyc") for p in asset.iterdir()}
    assert not top_level & set(NOT_ON_LAMBDA)
    assert {"referrals", "fastapi", "boto3", "botocore", "aws_lambda_powertools"} <= top_level


def test_botocore_keeps_the_models_of_the_services_called(asset: Path) -> None:
    models = {p.name for p in (asset / "botocore" / "data").iterdir() if p.is_dir()}
    assert models == set(SERVICES)
    assert (asset / "botocore" / "data" / "endpoints.json").is_file()


def test_the_asset_carries_cpython_312_byte_code(asset: Path) -> None:
    # The package keeps its sources beside its byte code; the dependencies ship byte code.
    assert (asset / "referrals" / "aws" / "api.py").is_file()
    assert (asset / "referrals" / "aws" / "__pycache__" / "api.cpython-312.pyc").is_file()
    assert (asset / "botocore" / "client.pyc").is_file()
    assert not (asset / "botocore" / "client.py").exists()
    assert not list(asset.rglob("*.cpython-311.pyc"))


PRIME = """
import json, sys
import snapshot_restore_py
import {module}
for hook, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
    hook(*args, **kwargs)
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


def imported(asset: Path, module: str) -> set[str]:
    """The top-level modules a CPython 3.12 holds once `module` is imported from the
    asset and primed (what a SnapStart snapshot holds). Priming makes the function's
    AWS clients, so a service model missing from the asset fails it."""
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(asset),
        "LAMBDA_TASK_ROOT": str(asset),
        "AWS_REGION": "us-east-2",
        "AWS_DEFAULT_REGION": "us-east-2",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "REFERRALS_DATABASE_URL": f"dynamodb://{PREFIX}",
        "REFERRALS_REPORTS_URL": "s3://reports/",
        "REFERRALS_NOTIFY_URL": "arn:aws:sns:us-east-2:123456789012:topic",
        "REFERRALS_SCHEDULER": "off",
        # Priming makes each client its function will: from botocore's trimmed models.
        "REFERRALS_SECRET_KEY_ARN": "arn:aws:secretsmanager:us-east-2:123456789012:secret:s-AbC",
    }
    out = subprocess.run(
        [lambda_python(), "-s", "-B", "-c", PRIME.format(module=module)],
        cwd=asset,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    names: list[str] = json.loads(out.stdout.splitlines()[-1])
    return set(names)


@pytest.mark.parametrize("short", FUNCTIONS)
def test_each_handler_imports_from_the_asset_what_it_uses(asset: Path, short: str) -> None:
    handler: Any = FUNCTIONS[short][0]
    modules = imported(asset, handler.removesuffix(".handler"))
    assert {"referrals", "boto3", "aws_lambda_powertools", "pydantic"} <= modules
    assert not modules & set(NOT_ON_LAMBDA)
    if short == "api":
        assert {"fastapi", "mangum"} <= modules
    else:  # the payout and notify functions answer events, not HTTP
        assert not modules & {"fastapi", "starlette", "mangum", "jinja2", "prometheus_client"}


STRIPE_WEBHOOK = """
import hashlib, hmac, sys, time
from referrals.api.problems import ApiError
from referrals.api.stripe_webhook import verify
secret, payload, at = "whsec_asset", b'{"id": "evt_1"}', int(time.time())
mac = hmac.new(secret.encode(), str(at).encode() + b"." + payload, hashlib.sha256).hexdigest()
verify(payload, f"t={at},v1={mac}", secret)
try:
    verify(payload, f"t={at - 301},v1={mac}", secret)
except ApiError as error:
    print(error.code)
print(sorted({name.split(".")[0] for name in sys.modules} & {"requests", "certifi"}))
"""


def test_the_api_function_checks_stripe_signatures_with_the_trimmed_library(asset: Path) -> None:
    out = subprocess.run(
        [lambda_python(), "-s", "-B", "-c", STRIPE_WEBHOOK],
        cwd=asset,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(asset)},
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.splitlines() == ["invalid_signature", "[]"]


def test_stripe_keeps_only_what_its_signature_check_imports(asset: Path) -> None:
    assert size_bytes(asset / "stripe") < 1024 * 1024  # of 9 MB installed
    assert not [p for p in asset.iterdir() if p.name.startswith(("requests", "certifi"))]
    assert not (asset / "stripe" / "params").exists()
