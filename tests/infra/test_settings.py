"""Stage and region from CDK context, and the names derived from them."""

import pytest

from infra.settings import StageSettings


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
