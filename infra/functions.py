"""The three Lambda functions: one asset, three handlers, each with its own role and log group."""

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.settings import StageSettings

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64

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
    """A function of the service with a role that starts empty.

    The role gets no managed policy: it may write to its own log group and
    nothing else until the stack grants it exactly what its handler uses.
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
        )
        # Environment variables are encrypted with the key; the role reads them.
        key.grant(self.role, "kms:Decrypt")
