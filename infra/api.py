"""The REST API: every route proxied to the API function, signup bodies validated at the edge."""

import json
from collections.abc import Mapping

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from pydantic import BaseModel

from infra.checks import skip_checkov
from infra.functions import encrypted_log_group
from infra.schemas import json_schema, request_schema
from infra.settings import StageSettings
from referrals.api.schemas import LegacySignupRequest, SignupRequest


def json_template(fields: Mapping[str, object]) -> str:
    """A JSON object template; `$context...String` variables come quoted and escaped already."""
    text = json.dumps(fields)
    for value in fields.values():
        if isinstance(value, str) and value.startswith("$context.") and value.endswith("String"):
            text = text.replace(json.dumps(value), value)
    return text


ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "xrayTraceId": "$context.xrayTraceId",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency",
    "error": "$context.error.messageString",
    "errorType": "$context.error.responseType",
}

# A body the gateway refuses gets the service's own problem document.
BAD_REQUEST_BODY = json_template(
    {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "$context.error.messageString",
        "code": "validation_error",
    }
)

NO_AUTHORIZER = (
    "Every route except /healthz and /docs authenticates the service's own bearer API keys "
    "(hashed in the main table, admin/ingest roles) inside the function; an API Gateway "
    "authorizer would duplicate that check and add a second Lambda call per request."
)

# Routes the FastAPI app serves, as API Gateway resources. `{proxy+}` catches
# the rest; `/v1/{proxy+}` too, because the gateway does not fall back from a
# static `/v1` to the root's greedy path.
VALIDATED: dict[str, type[BaseModel]] = {
    "/signup": LegacySignupRequest,
    "/v1/signups": SignupRequest,
}


class ReferralsApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        function: lambda_.IFunction,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        access_name = f"/aws/apigateway/{settings.name('api')}"
        self.access_logs = encrypted_log_group(self, "AccessLogs", access_name, key)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=settings.name("api"),
            description=f"referrals ({settings.stage})",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Logging (access and execution) needs the account's API Gateway role.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage,
                throttling_rate_limit=settings.api_rate_limit,
                throttling_burst_limit=settings.api_burst_limit,
                tracing_enabled=True,
                # Per-method metrics are custom metrics ($0.30 each a month); the
                # dashboard and alarms use the free per-stage ones (ApiName, Stage).
                metrics_enabled=False,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # Bodies carry emails: never in the execution logs.
                data_trace_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json_template(ACCESS_LOG_FORMAT)),
            ),
        )
        self.stage = self.api.deployment_stage
        # API Gateway creates this group itself, with no retention, unless it exists.
        execution_name = f"API-Gateway-Execution-Logs_{self.api.rest_api_id}/{settings.stage}"
        self.execution_logs = encrypted_log_group(self, "ExecutionLogs", execution_name, key)
        skip_checkov(
            self.stage,
            "CKV_AWS_120",
            "No cache: every response depends on the caller's API key and most routes write; "
            "a cache would serve stale counters or one caller's data to another.",
        )

        self.validator = self.api.add_request_validator(
            "BodyValidator",
            request_validator_name=settings.name("body"),
            validate_request_body=True,
            validate_request_parameters=False,
        )
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            response_headers={"Content-Type": "'application/problem+json'"},
            templates={"application/json": BAD_REQUEST_BODY},
        )

        integration = apigw.LambdaIntegration(function, allow_test_invoke=False)
        self.methods: list[apigw.Method] = []
        root = self.api.root
        self._proxy(root, integration)
        self._proxy(root.add_resource("{proxy+}"), integration)
        v1 = root.add_resource("v1")
        self._proxy(v1.add_resource("{proxy+}"), integration)
        self.models: dict[str, apigw.Model] = {}
        for path, model in VALIDATED.items():
            resource = self.api.root.resource_for_path(path)
            self.models[path] = self.api.add_model(
                model.__name__,
                model_name=model.__name__,
                content_type="application/json",
                description=f"{model.__name__} from referrals.api.schemas",
                schema=json_schema(request_schema(model)),
            )
            self._method(
                resource,
                "POST",
                integration,
                request_validator=self.validator,
                request_models={"application/json": self.models[path]},
            )
            # Other methods reach the app, which answers 405 as it would anywhere.
            self._proxy(resource, integration)

    def _proxy(self, resource: apigw.IResource, integration: apigw.Integration) -> None:
        self._method(resource, "ANY", integration)

    def _method(
        self,
        resource: apigw.IResource,
        http_method: str,
        integration: apigw.Integration,
        *,
        request_validator: apigw.IRequestValidator | None = None,
        request_models: dict[str, apigw.IModel] | None = None,
    ) -> None:
        method = resource.add_method(
            http_method,
            integration,
            authorization_type=apigw.AuthorizationType.NONE,
            request_validator=request_validator,
            request_models=request_models,
        )
        skip_checkov(method, "CKV_AWS_59", NO_AUTHORIZER)
        self.methods.append(method)
