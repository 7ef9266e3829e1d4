"""Stage and region from CDK context, and the names derived from them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.settings import ContextError, StageSettings, program_environment


def test_defaults_are_prod_in_us_east_2() -> None:
    from aws_cdk import App

    settings = StageSettings.from_context(App().node)
    assert (settings.stage, settings.region, settings.prefix) == (
        "prod",
        "us-east-2",
        "referrals-prod",
    )


def test_stage_and_region_come_from_context() -> None:
    from aws_cdk import App

    settings = StageSettings.from_context(App(context={"stage": "qa", "region": "eu-west-1"}).node)
    assert (settings.stage, settings.region) == ("qa", "eu-west-1")
    assert settings.name("api") == "referrals-qa-api"


@pytest.mark.parametrize("stage", ["", "Prod", "1st", "a_b", "x" * 17, "dev-", "dev stage"])
def test_a_stage_that_cannot_name_every_resource_is_refused(stage: str) -> None:
    with pytest.raises(ValueError, match="stage"):
        StageSettings(stage=stage)


def test_a_region_must_look_like_one() -> None:
    with pytest.raises(ValueError, match="region"):
        StageSettings(region="ohio")


def test_program_settings_from_context_reach_every_function_as_the_service_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.app import build
    from referrals.bootstrap import seed_rules
    from referrals.config import Settings
    from tests.infra.conftest import cdk_context

    chosen = {
        "tiers": "1:500,3:900",
        "hold_days": "14",
        "auto_enroll": "false",
        "share_url": "https://shop.example.com/join?ref={code}",
    }
    template = Template.from_stack(build(App(context=cdk_context(**chosen)))).to_json()
    functions = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "FunctionName" in r["Properties"]
    ]
    assert len(functions) == 3
    for function in functions:
        variables = function["Environment"]["Variables"]
        assert {name: variables.get(f"REFERRALS_{name.upper()}") for name in chosen} == chosen
    for name in chosen:  # what a function's Settings read from those variables
        monkeypatch.setenv(f"REFERRALS_{name.upper()}", variables[f"REFERRALS_{name.upper()}"])
    rules = seed_rules(Settings())
    assert [(t.threshold, t.reward_cents) for t in rules.tiers.tiers] == [(1, 500), (3, 900)]
    assert (rules.hold.days, rules.auto_enroll_referees) == (14, False)


def test_program_settings_from_cdk_json_keep_their_meaning() -> None:
    # cdk.json holds JSON numbers and booleans, not strings.
    assert program_environment({"hold_days": 14, "check_same_device": False}) == {
        "REFERRALS_HOLD_DAYS": "14",
        "REFERRALS_CHECK_SAME_DEVICE": "false",
    }


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("hold_days", "-1", "greater than or equal to 0"),
        ("tiers", "5:1000,1:500", "tier"),
        ("reward_trigger", "sometimes", "'signup' or 'conversion'"),
        ("auto_enroll", "perhaps", "valid boolean"),
    ],
)
def test_a_bad_program_setting_is_refused_naming_it(name: str, value: str, problem: str) -> None:
    from aws_cdk import App

    with pytest.raises(ContextError, match=f"-c {name}={value}: .*{problem}"):
        StageSettings.from_context(App(context={name: value}).node)


def test_the_deploying_machines_environment_is_not_the_functions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REFERRALS_TIERS", "not tiers")
    monkeypatch.setenv("REFERRALS_HOLD_DAYS", "3")
    assert program_environment({"minimum_payout_cents": "500"}) == {
        "REFERRALS_MINIMUM_PAYOUT_CENTS": "500"
    }


def test_cdk_synth_with_a_bad_value_fails_with_one_line(tmp_path: Path) -> None:
    # As `npx aws-cdk synth -c hold_days=-1` runs the app (infra/cdk.json).
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"hold_days": "-1"}),
        "CDK_OUTDIR": str(tmp_path),
    }
    root = Path(__file__).parents[2]
    run = subprocess.run(
        [sys.executable, "-m", "infra.app"], cwd=root, env=env, capture_output=True, text=True
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "referrals: program setting -c hold_days=-1: Input should be greater than or equal to 0"
    ]
    assert list(tmp_path.iterdir()) == []  # nothing synthesized
