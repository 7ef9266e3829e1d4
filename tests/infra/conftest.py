"""The stack synthesized once per session (Lambda bundling skipped: no pip, no network).

jsii reads these variables when its Node process starts, on the first import of
aws_cdk, so they are set before any test module imports it.

The helpers below the fixtures read the template for every test module: find a
resource, render a name built with Fn::Join, list every policy statement.
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


# --- reading the template ------------------------------------------------------------

PREFIX = "referrals-prod"
FUNCTIONS = {
    # short name: (handler, reserved concurrency)
    "api": ("referrals.aws.api.handler", 50),
    "payout": ("referrals.aws.payout.handler", 1),
    "notify": ("referrals.aws.notify.handler", 5),
}

Json = dict[str, Any]


def resources(template_json: Json, resource_type: str) -> dict[str, Json]:
    return {
        logical_id: resource
        for logical_id, resource in template_json["Resources"].items()
        if resource["Type"] == resource_type
    }


def find(template_json: Json, resource_type: str, **properties: Any) -> tuple[str, Json]:
    """The one resource of this type whose properties include these values."""
    matches = [
        (logical_id, resource)
        for logical_id, resource in resources(template_json, resource_type).items()
        if all(resource["Properties"].get(k) == v for k, v in properties.items())
    ]
    assert len(matches) == 1, (resource_type, properties, [m[0] for m in matches])
    return matches[0]


def ref(template_json: Json, resource_type: str, **properties: Any) -> Json:
    return {"Ref": find(template_json, resource_type, **properties)[0]}


def arn(template_json: Json, resource_type: str, **properties: Any) -> Json:
    return {"Fn::GetAtt": [find(template_json, resource_type, **properties)[0], "Arn"]}


def alias(template_json: Json, short: str) -> tuple[str, Json]:
    """The `live` alias of the function `short` (its Ref is its ARN): (logical id, resource)."""
    function = ref(template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{short}")
    return find(template_json, "AWS::Lambda::Alias", FunctionName=function, Name="live")


def alias_ref(template_json: Json, short: str) -> Json:
    return {"Ref": alias(template_json, short)[0]}


# Resources whose Ref is the name they are given.
_NAMES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Events::Rule": "Name",
    "AWS::ApiGateway::Stage": "StageName",
}


def render(value: Any, template_json: Json) -> str:
    """A string built with Fn::Join (or Fn::Select of an Fn::Split), with each Ref as
    the named resource's name, and an alias's Ref as its ARN (what Ref gives)."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part, template_json) for part in parts)
    if "Fn::Select" in value:
        index, listed = value["Fn::Select"]
        separator, text = listed["Fn::Split"]
        return render(text, template_json).split(separator)[index]
    if "Ref" in value:
        resource = template_json["Resources"].get(value["Ref"])
        if resource and resource["Type"] in _NAMES:
            return str(resource["Properties"][_NAMES[resource["Type"]]])
        if resource and resource["Type"] == "AWS::Lambda::Alias":
            function = render(resource["Properties"]["FunctionName"], template_json)
            name = resource["Properties"]["Name"]
            return f"arn:aws:lambda:<region>:<account>:function:{function}:{name}"
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    raise AssertionError(f"cannot render {value!r}")


def statements(template_json: Json) -> Iterator[tuple[str, str, Json]]:
    """(logical id, type, statement) of every policy document in the template."""
    for logical_id, resource in template_json["Resources"].items():
        props = resource.get("Properties", {})
        documents = [props[k] for k in ("PolicyDocument", "KeyPolicy") if k in props]
        documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in documents:
            for statement in document["Statement"]:
                yield logical_id, resource["Type"], statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def find_bucket(template_json: Json, purpose: str) -> tuple[str, Json]:
    """The bucket named for this purpose (`reports`, `logs`): (logical id, resource)."""
    (match,) = [
        (logical_id, resource)
        for logical_id, resource in resources(template_json, "AWS::S3::Bucket").items()
        if render(resource["Properties"]["BucketName"], template_json).startswith(
            f"{PREFIX}-{purpose}-"
        )
    ]
    return match
