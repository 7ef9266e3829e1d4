"""The three Lambda functions: one asset, three handlers, each with its own role and log group.

Each function runs with SnapStart on its published versions, behind the alias `live`:
Lambda initializes a version once, when it is published (the handler's import and its
before-snapshot hooks, see referrals.aws.runtime), and resumes every new instance from
that snapshot. Only a version has a snapshot, so every invoker (API Gateway, the
EventBridge rules, the state machine, the outbox stream) invokes the alias, never the
function itself ($LATEST, which would start cold). Each deploy that changes the code or
the configuration publishes a new version and moves the alias to it.
"""

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.settings import StageSettings

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
ALIAS = "live"

_RETENTION = {7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS}


def encrypted_log_group(
    scope: Construct,
    construct_id: str,
    name: str,
    key: kms.IKey,
    retention: logs.RetentionDays = logs.RetentionDays.ONE_WEEK,
) -> logs.LogGroup:
    """A log group encrypted with the stack's key and removed with the stage.

    Retained log groups would block the next deploy of the same stage.
    """
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=retention,
        encryption_key=key,
        removal_policy=RemovalPolicy.DESTROY,
    )


class ServiceFunction(Construct):
    """A function of the service with a role that starts empty, and its alias.

    The role gets no managed policy: it may write to its own log group and
    nothing else until the stack grants it exactly what its handler uses.
    Invokers get `alias`, whose version has a SnapStart snapshot.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        name: str,
        handler: str,
        description: str,
        code: lambda_.Code,
        environment: dict[str, str],
        key: kms.IKey,
        timeout_seconds: int,
        memory_mb: int,
        reserved_concurrency: int,
        dead_letter_queue: sqs.IQueue | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        retention = _RETENTION[settings.log_retention_days]
        self.log_group = encrypted_log_group(self, "Logs", f"/aws/lambda/{name}", key, retention)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{name}: runs {handler}",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=code,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            environment=environment,
            environment_encryption=key,
            dead_letter_queue=dead_letter_queue,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS,
            # Each version's snapshot is billed while it is cached: a deploy deletes the
            # version it replaces (once the alias has moved), rather than keep it.
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY),
        )
        # The CDK warns that SnapStart applies to published versions only: it is
        # published, right below, and the alias is what is invoked.
        Annotations.of(self.function).acknowledge_warning(
            "@aws-cdk/aws-lambda:snapStartRequirePublish", "published, behind the alias"
        )
        self.alias = lambda_.Alias(
            self,
            "Alias",
            alias_name=ALIAS,
            version=self.function.current_version,
            description=f"{name}: the published version invokers call (SnapStart)",
        )
        # Environment variables are encrypted with the key; the role reads them.
        key.grant(self.role, "kms:Decrypt")
