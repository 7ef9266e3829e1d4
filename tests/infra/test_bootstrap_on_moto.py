"""The first admin key made as infra/README.md says, against the synthesized stack's tables.

The stack's resources are created in moto from the template, as CloudFormation
would make them; the CLI runs the README's own command line (its variables and
arguments, read from the README) in-process, on a machine whose AWS profile
names another region; the API function, with the template's environment, must
then accept the keys it printed.
"""

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner, Result

from referrals.aws import api
from referrals.aws.runtime import services
from referrals.cli import app
from tests.aws.conftest import REGION, LambdaContext, rest_event
from tests.infra.deployment import Resolver, create_from_template, function_environment

README = Path(__file__).parents[2] / "infra" / "README.md"
PROFILE_REGION = "eu-west-1"  # the region this machine's AWS profile names
MAIN_TABLE = "referrals-prod-main"


def readme_command(words: str) -> tuple[dict[str, str], list[str]]:
    """The variables and arguments of the README's shell block that runs `words`."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)
    (block,) = [b for b in blocks if words in b]
    argv = shlex.split(block.replace("\\\n", " "))
    env = {}
    while "=" in argv[0]:
        name, _, value = argv.pop(0).partition("=")
        env[name] = value
    return env, argv


KEY_ENV, KEY_ARGV = readme_command("keys create")


@pytest.fixture
def stack(
    template_json: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The stack in moto; yields the API function's environment."""
    aws = ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
    for name in (*aws, "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("REFERRALS_")]:
        monkeypatch.delenv(name)
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nregion = {PROFILE_REGION}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    # boto3's default session reads the config file once: a fresh one reads this one.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.chdir(tmp_path)  # the CLI's local defaults (reports folder) land here
    with mock_aws():
        resolve = Resolver()
        create_from_template(template_json, resolve)
        services.cache_clear()
        api._adapter = None
        yield function_environment(template_json, resolve)
        services.cache_clear()
        api._adapter = None


def cli(argv: list[str], env: dict[str, str]) -> Result:
    assert argv[0] == ".venv/bin/referrals"
    return CliRunner().invoke(app, argv[1:], env=env)


def tables(region: str) -> list[str]:
    names: list[str] = boto3.client("dynamodb", region_name=region).list_tables()["TableNames"]
    return names


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def as_the_api_function(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, key: str
) -> int:
    """The status of an authenticated route, called through the API function."""
    for name, value in {**environment, "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    event = rest_event("GET", "/v1/referrals", headers={"Authorization": f"Bearer {key}"})
    status: int = api.handler(event, LambdaContext())["statusCode"]
    return status


def test_the_readme_names_the_region_variable_boto3_reads() -> None:
    assert KEY_ENV == {
        "REFERRALS_DATABASE_URL": "dynamodb://referrals-prod",
        "AWS_DEFAULT_REGION": REGION,
    }
    assert KEY_ARGV[1:] == ["keys", "create", "--role", "admin"]


def test_readme_key_creation_twice_makes_two_keys_the_api_accepts(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [cli(KEY_ARGV, KEY_ENV) for _ in range(2)]
    for run in runs:
        assert run.exit_code == 0, run.output
    keys = [run.stdout.strip().splitlines()[-1] for run in runs]
    assert keys[0] != keys[1]
    # Nothing was created in the profile's region, and no table beside the stack's.
    assert tables(PROFILE_REGION) == []
    assert tables(REGION) == ["referrals-prod-main", "referrals-prod-outbox"]
    for key in keys:
        assert as_the_api_function(stack, monkeypatch, key) == 200
    assert as_the_api_function(stack, monkeypatch, "not-a-key") == 401


def test_db_upgrade_twice_on_the_deployed_tables_keeps_them_and_their_keys(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    created = cli(KEY_ARGV, KEY_ENV)
    key = created.stdout.strip().splitlines()[-1]
    for _ in range(2):
        upgraded = cli([KEY_ARGV[0], "db", "upgrade"], KEY_ENV)
        assert upgraded.exit_code == 0, upgraded.output
    assert tables(REGION) == ["referrals-prod-main", "referrals-prod-outbox"]
    assert as_the_api_function(stack, monkeypatch, key) == 200


@pytest.mark.parametrize(
    "region_env",
    [{}, {"AWS_REGION": REGION}],
    ids=["profile-region", "AWS_REGION-is-not-read"],
)
def test_in_a_region_without_the_tables_the_command_stops_and_creates_nothing(
    stack: dict[str, str], region_env: dict[str, str]
) -> None:
    env = {"REFERRALS_DATABASE_URL": KEY_ENV["REFERRALS_DATABASE_URL"], **region_env}
    result = cli(KEY_ARGV, env)
    assert one_line_error(result) == (
        f"error: DynamoDB table {MAIN_TABLE} does not exist in region {PROFILE_REGION} "
        "(the region comes from AWS_DEFAULT_REGION or the AWS profile; outside a deployed "
        "stack, `referrals db upgrade` creates the tables)"
    )
    assert tables(PROFILE_REGION) == []


def test_with_no_region_at_all_the_command_says_which_variable_to_set(
    stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "aws-config").write_text("[default]\n")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    result = cli(KEY_ARGV, {"REFERRALS_DATABASE_URL": KEY_ENV["REFERRALS_DATABASE_URL"]})
    assert "set AWS_DEFAULT_REGION" in one_line_error(result)


def test_a_table_with_other_keys_is_an_error_naming_it(stack: dict[str, str]) -> None:
    other = "us-west-2"
    boto3.client("dynamodb", region_name=other).create_table(
        TableName=MAIN_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    env = {**KEY_ENV, "AWS_DEFAULT_REGION": other}
    expected = (
        f"error: DynamoDB table {MAIN_TABLE} in region {other} is not the table referrals "
        "expects: its keys are (id S), expected (pk S, sk S); it has no index by_referrer_keys"
    )
    for argv in (KEY_ARGV, [KEY_ARGV[0], "db", "upgrade"]):
        assert one_line_error(cli(argv, env)).startswith(expected)
    # Neither command went on to the outbox table.
    assert tables(other) == [MAIN_TABLE]
