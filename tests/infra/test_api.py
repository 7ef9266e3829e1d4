"""api.py: the REST API's routes, request validation, refused-body response, stage and logs."""

import json
import re

import pytest
from aws_cdk.assertions import Template
from pydantic import BaseModel

from infra.schemas import request_schema
from referrals.api.schemas import LegacySignupRequest, SignupRequest
from tests.infra.conftest import PREFIX, Json, alias_ref, find, resources


def _resource_paths(template_json: Json) -> dict[str, str]:
    """Logical id of every API resource -> its full path."""
    api_resources = resources(template_json, "AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path(logical_id: str) -> str:
        props = api_resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    for logical_id in api_resources:
        paths[logical_id] = path(logical_id)
    return paths


def _method(template_json: Json, path: str, http_method: str) -> Json:
    paths = _resource_paths(template_json)
    (method,) = [
        m["Properties"]
        for m in resources(template_json, "AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == http_method
        and "Ref" in m["Properties"]["ResourceId"]
        and paths[m["Properties"]["ResourceId"]["Ref"]] == path
    ]
    assert isinstance(method, dict)
    return method


def test_routes_reach_the_api_function(template_json: Json) -> None:
    assert set(_resource_paths(template_json).values()) == {
        "/{proxy+}",
        "/signup",
        "/v1",
        "/v1/{proxy+}",
        "/v1/signups",
    }
    # The alias, whose published version has a SnapStart snapshot; never the function.
    function_arn = alias_ref(template_json, "api")
    for path, http_method in [
        ("/{proxy+}", "ANY"),
        ("/v1/{proxy+}", "ANY"),
        ("/signup", "POST"),
        ("/v1/signups", "POST"),
    ]:
        integration = _method(template_json, path, http_method)["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert function_arn in integration["Uri"]["Fn::Join"][1]


@pytest.mark.parametrize(
    ("path", "model"), [("/signup", LegacySignupRequest), ("/v1/signups", SignupRequest)]
)
def test_signup_bodies_are_validated_against_the_pydantic_schema(
    template_json: Json, path: str, model: type[BaseModel]
) -> None:
    method = _method(template_json, path, "POST")
    validator_id = method["RequestValidatorId"]["Ref"]
    validator = template_json["Resources"][validator_id]["Properties"]
    assert validator["ValidateRequestBody"] is True
    model_id = method["RequestModels"]["application/json"]["Ref"]
    schema = template_json["Resources"][model_id]["Properties"]["Schema"]
    assert schema == request_schema(model)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(model.model_json_schema()["required"])
    text = json.dumps(schema)
    assert "anyOf" not in text and "$defs" not in text and "$ref" not in text
    for field in schema["required"]:
        assert {"pattern", "maxLength", "minLength"} <= set(schema["properties"][field])
    email = {k: v for k, v in schema["properties"]["email"].items() if k != "description"}
    assert email == {
        "maxLength": 254,
        "minLength": 3,
        "title": "Email",
        "type": ["string", "null"],
    }


def test_a_refused_body_is_a_validation_problem(template_json: Json) -> None:
    _, response = find(
        template_json, "AWS::ApiGateway::GatewayResponse", ResponseType="BAD_REQUEST_BODY"
    )
    props = response["Properties"]
    assert props["StatusCode"] == "400"
    assert props["ResponseParameters"] == {
        "gatewayresponse.header.Content-Type": "'application/problem+json'"
    }
    body = props["ResponseTemplates"]["application/json"]
    problem = json.loads(body.replace("$context.error.messageString", '"Invalid request body"'))
    assert problem["code"] == "validation_error"
    assert problem["status"] == 400


def test_stage_throttles_traces_and_logs_access_as_json(template_json: Json) -> None:
    _, stage = find(template_json, "AWS::ApiGateway::Stage", StageName="prod")
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    (settings,) = props["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == 100
    assert settings["ThrottlingBurstLimit"] == 200
    assert settings["MetricsEnabled"] is False  # the per-stage metrics are enough
    assert settings["DataTraceEnabled"] is False
    access_logs, _ = find(
        template_json, "AWS::Logs::LogGroup", LogGroupName=f"/aws/apigateway/{PREFIX}-api"
    )
    assert {"Ref": access_logs} in props["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
    sample = re.sub(r"\$context\.[A-Za-z.]+String", '"x"', props["AccessLogSetting"]["Format"])
    fields = json.loads(sample)
    assert {"requestId", "ip", "httpMethod", "resourcePath", "status", "error"} <= set(fields)


def test_api_gateway_may_write_logs(template: Template) -> None:
    # Access and execution logs need the account's API Gateway CloudWatch role.
    template.resource_count_is("AWS::ApiGateway::Account", 1)
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {"Name": f"{PREFIX}-api", "EndpointConfiguration": {"Types": ["REGIONAL"]}},
    )
