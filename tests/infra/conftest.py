"""The stack synthesized once per session, with Lambda bundling skipped (no pip, no network).

jsii reads these variables when its Node process starts, on the first import of
aws_cdk, so they are set before any test module imports it.
"""

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "fail")


def cdk_context(**overrides: Any) -> dict[str, Any]:
    """infra/cdk.json's context (feature flags included), with Lambda bundling skipped."""
    from infra import app

    return app.cdk_context(**{app.SKIP_BUNDLING: [], **overrides})


@dataclass(frozen=True)
class Synthesized:
    stack: Any  # infra.stack.ReferralsStack
    template: Any  # aws_cdk.assertions.Template
    json: dict[str, Any]


@pytest.fixture(scope="session")
def synthesized() -> Synthesized:
    """The default deployment (`npx aws-cdk synth`: stage prod, us-east-2)."""
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.app import build

    stack = build(App(context=cdk_context()))
    template = Template.from_stack(stack)
    return Synthesized(stack, template, dict(template.to_json()))


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> Any:
    return synthesized.template


@pytest.fixture(scope="session")
def template_json(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.json


@pytest.fixture(scope="session")
def other_synthesis() -> dict[str, dict[str, Any]]:
    """A second, separate app holding `prod` again and `alpha`: one more synthesis in all."""
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.app import build
    from infra.settings import StageSettings

    app = App(context=cdk_context())
    stacks = {stage: build(app, StageSettings(stage=stage)) for stage in ("prod", "alpha")}
    return {stage: dict(Template.from_stack(stack).to_json()) for stage, stack in stacks.items()}


@pytest.fixture(scope="session")
def template_file(
    template_json: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("infra") / "template.json"
    path.write_text(json.dumps(template_json, indent=1))
    yield path
