"""Where the data lives: the key, the DynamoDB tables, the report bucket, the topic, the DLQ.

The tables are built from `referrals.adapters.dynamodb.tables`, the one
definition the store and its tests use too, so the deployed key schema and
indexes cannot drift from what the code queries.
"""

from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.checks import skip_checkov
from infra.settings import StageSettings
from referrals.adapters.dynamodb.tables import TTL_ATTRIBUTE, main_table, outbox_table
from referrals.domain.reports import STAGED_PREFIX

# S3 Glacier Instant Retrieval: the API still serves old reports
# (`GET /v1/payouts/{period}/report`) with a plain GetObject; Flexible Retrieval
# would answer InvalidObjectState until a restore, and the route would fail.
ARCHIVE_CLASS = s3.StorageClass.GLACIER_INSTANT_RETRIEVAL
ARCHIVE_AFTER = Duration.days(90)
STAGED_EXPIRE_AFTER = Duration.days(7)

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
_STREAM_VIEWS = {view.value: view for view in dynamodb.StreamViewType}
_PROJECTIONS = {projection.value: projection for projection in dynamodb.ProjectionType}


def table_from_definition(
    scope: Construct,
    construct_id: str,
    definition: dict[str, Any],
    key: kms.IKey,
    time_to_live_attribute: str | None = None,
) -> dynamodb.Table:
    """A table from CreateTable arguments, hardened: PITR, customer key, retained; with
    Time to Live on `time_to_live_attribute` if given."""
    if definition["BillingMode"] != "PAY_PER_REQUEST":
        raise ValueError("only on-demand tables are deployed")
    types = {a["AttributeName"]: a["AttributeType"] for a in definition["AttributeDefinitions"]}

    def attribute(name: str) -> dynamodb.Attribute:
        return dynamodb.Attribute(name=name, type=_ATTRIBUTE_TYPES[types[name]])

    def keys(schema: list[dict[str, str]]) -> dict[str, str]:
        return {k["KeyType"]: k["AttributeName"] for k in schema}

    table_keys = keys(definition["KeySchema"])
    stream = definition.get("StreamSpecification", {})
    table = dynamodb.Table(
        scope,
        construct_id,
        table_name=definition["TableName"],
        partition_key=attribute(table_keys["HASH"]),
        sort_key=attribute(table_keys["RANGE"]) if "RANGE" in table_keys else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        stream=_STREAM_VIEWS[stream["StreamViewType"]] if stream.get("StreamEnabled") else None,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=True,
        removal_policy=RemovalPolicy.RETAIN,
        time_to_live_attribute=time_to_live_attribute,
    )
    for index in definition.get("GlobalSecondaryIndexes", []):
        index_keys = keys(index["KeySchema"])
        table.add_global_secondary_index(
            index_name=index["IndexName"],
            partition_key=attribute(index_keys["HASH"]),
            sort_key=attribute(index_keys["RANGE"]) if "RANGE" in index_keys else None,
            projection_type=_PROJECTIONS[index["Projection"]["ProjectionType"]],
        )
    return table


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StageSettings) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        prefix = settings.prefix

        # One customer key for the data at rest (tables, topic, queue, logs,
        # function environments): rotated yearly, retained with the tables it
        # protects, since destroying it would make their backups unreadable.
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{prefix}",
            description=f"referrals ({settings.stage}): data at rest",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsTheLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                        )
                    }
                },
            )
        )
        # Alarms publish to the encrypted topic as CloudWatch, not as a role.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )

        definition = main_table(prefix, keep=settings.keep_indexes, defer=settings.defer_indexes)
        self.main_table = table_from_definition(
            self, "MainTable", definition, self.key, time_to_live_attribute=TTL_ATTRIBUTE
        )
        self.outbox_table = table_from_definition(
            self, "OutboxTable", outbox_table(prefix), self.key
        )

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=f"{prefix}-logs-{Aws.ACCOUNT_ID}-{stack.region}",
            # S3 server access logs can only be delivered to an SSE-S3 bucket.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(365),
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        skip_checkov(
            self.access_logs,
            "CKV_AWS_18",
            "This is the access-log bucket of the report bucket; logging it would log itself.",
        )

        self.reports = s3.Bucket(
            self,
            "Reports",
            bucket_name=f"{prefix}-reports-{Aws.ACCOUNT_ID}-{stack.region}",
            # The report store writes with ServerSideEncryption=AES256.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="reports/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="archive-reports",
                    transitions=[
                        s3.Transition(storage_class=ARCHIVE_CLASS, transition_after=ARCHIVE_AFTER)
                    ],
                    noncurrent_version_transitions=[
                        s3.NoncurrentVersionTransition(
                            storage_class=ARCHIVE_CLASS, transition_after=ARCHIVE_AFTER
                        )
                    ],
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                # A staged copy is deleted once its report is published, which on a
                # versioned bucket keeps it as an old version: those go after a day, and
                # so, after a week, does what an attempt that never completed left.
                s3.LifecycleRule(
                    id="expire-staged-reports",
                    prefix=STAGED_PREFIX,
                    expiration=STAGED_EXPIRE_AFTER,
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=f"{prefix}-notifications",
            display_name="Referral Program Notifications",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisStage",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": (
                            f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}"
                            f":alarm:{prefix}-*"
                        )
                    }
                },
            )
        )

        # Records the notify function could not deliver, and failed async invocations.
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=f"{prefix}-dead-letters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            retention_period=Duration.days(14),
            enforce_ssl=True,
        )
