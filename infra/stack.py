"""The referrals stack: the original AWS design, corrected (see infra/README.md)."""

from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.api import ReferralsApi
from infra.bundling import lambda_code
from infra.checks import skip_checkov
from infra.functions import ServiceFunction
from infra.monitoring import Monitoring
from infra.payouts import PayoutSchedule
from infra.settings import StageSettings
from infra.storage import Storage

# What each handler does to the tables, as the DynamoDB store does it: GetItem,
# Query, PutItem, UpdateItem, and TransactWriteItems, which has no action of
# its own (each item is authorised as Put/Update/ConditionCheck). No Scan, no
# batch operations: the store uses none of them. DeleteItem only on the outbox,
# for the notify sweep that prunes delivered events (OUTBOX_PRUNE).
TABLE_READ = ("dynamodb:GetItem", "dynamodb:Query")
TABLE_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")
# Events are put in the same transaction as the change they announce.
OUTBOX_APPEND = ("dynamodb:PutItem",)
# Claiming due events, marking them delivered or failed, listing, re-queueing.
OUTBOX_UPDATE = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem")
# Deleting delivered events past their retention (REFERRALS_OUTBOX_RETENTION_DAYS).
OUTBOX_PRUNE = ("dynamodb:DeleteItem",)
# Customer-key encrypted tables: DynamoDB uses the key as the caller.
KEY_DATA = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
# Reports and manifests: put (multipart for large ones), get; ListBucket makes a
# missing report a 404 (NoSuchKey) instead of a 403. DeleteObject removes a staged copy
# once its report is published: on the versioned bucket it only hides it (a delete
# marker, no s3:DeleteObjectVersion), and the staged prefix's lifecycle rule expires it.
REPORT_OBJECTS = ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject")
REPORT_BUCKET = ("s3:ListBucket",)

LAMBDA_DLQ_NOT_APPLICABLE = (
    "Invoked synchronously ({by}), so a Lambda dead-letter queue would never receive "
    "anything: {failures}"
)


class ReferralsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        code: lambda_.Code | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"referrals ({settings.stage}): referral management service",
            **kwargs,
        )
        self.settings = settings
        Tags.of(self).add("project", "referrals")
        Tags.of(self).add("stage", settings.stage)

        storage = Storage(self, "Storage", settings=settings)
        self.storage = storage
        code = code or lambda_code()
        environment = {
            "REFERRALS_DATABASE_URL": f"dynamodb://{settings.prefix}",
            "REFERRALS_REPORTS_URL": f"s3://{storage.reports.bucket_name}/",
            "REFERRALS_NOTIFY_URL": storage.topic.topic_arn,
            # Lambda has no background thread between invocations: EventBridge
            # schedules the payouts, the outbox stream drives the notifications.
            "REFERRALS_SCHEDULER": "off",
            # Tiers, hold, caps, trigger...: `-c name=value` (infra/README.md).
            **settings.program_environment,
            "POWERTOOLS_SERVICE_NAME": "referrals",
            "POWERTOOLS_METRICS_NAMESPACE": "Referrals",
            # Responses carry emails: keep them out of X-Ray.
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        }

        def function(
            construct_id: str, short: str, handler: str, **options: Any
        ) -> ServiceFunction:
            return ServiceFunction(
                self,
                construct_id,
                settings=settings,
                name=settings.name(short),
                handler=handler,
                code=code,
                environment=environment,
                key=storage.key,
                **options,
            )

        self.api_function = function(
            "ApiFunction",
            "api",
            "referrals.aws.api.handler",
            description="The HTTP API (FastAPI through Mangum) behind API Gateway",
            timeout_seconds=settings.api_timeout_seconds,
            memory_mb=1024,
            reserved_concurrency=settings.api_concurrency,
        )
        self.payout_function = function(
            "PayoutFunction",
            "payout",
            "referrals.aws.payout.handler",
            description="One slice of a monthly payout run, called by the payout state machine",
            timeout_seconds=settings.payout_timeout_seconds,
            memory_mb=1024,
            reserved_concurrency=settings.payout_concurrency,
        )
        self.notify_function = function(
            "NotifyFunction",
            "notify",
            "referrals.aws.notify.handler",
            description="Delivers new outbox events to the SNS topic",
            timeout_seconds=settings.notify_timeout_seconds,
            memory_mb=512,
            reserved_concurrency=settings.notify_concurrency,
            dead_letter_queue=storage.dead_letters,
        )
        skip_checkov(
            self.api_function.function,
            "CKV_AWS_116",
            LAMBDA_DLQ_NOT_APPLICABLE.format(
                by="API Gateway", failures="a failed request is an HTTP error to its caller."
            ),
        )
        skip_checkov(
            self.payout_function.function,
            "CKV_AWS_116",
            LAMBDA_DLQ_NOT_APPLICABLE.format(
                by="the payout state machine",
                failures="the state machine retries, and a failed run alarms to the topic.",
            ),
        )
        for service_function in (self.api_function, self.payout_function, self.notify_function):
            skip_checkov(
                service_function.function,
                "CKV_AWS_117",
                "No VPC: the function reaches only AWS APIs (DynamoDB, S3, SNS) over TLS with IAM "
                "authentication; a VPC would need NAT or endpoints and add cost and cold-start "
                "time without protecting anything it can reach.",
            )
            storage.key.grant(service_function.role, *KEY_DATA)

        # API: everything the HTTP routes do, payouts included (POST /v1/payouts).
        self._grant_table(self.api_function, storage.main_table, *TABLE_READ, *TABLE_WRITE)
        self._grant_table(self.api_function, storage.outbox_table, *OUTBOX_APPEND, *OUTBOX_UPDATE)
        self._grant_reports(self.api_function, storage.reports)
        # Portal links and dashboard sessions are signed with a key derived from this
        # secret. Every API instance reads it at its cold start (the function gets the
        # ARN, never the value), so a link one instance issued opens on any other. Not
        # rotated: a new value invalidates every live link and session at once, which is
        # right after a leak but not on a schedule. Retained with the data of the stage.
        self.signing_secret = secretsmanager.Secret(
            self,
            "SigningSecret",
            secret_name=settings.name("signing-secret"),
            description=f"referrals ({settings.stage}): signs portal links and dashboard sessions",
            encryption_key=storage.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.signing_secret.grant_read(self.api_function.role)
        self.api_function.function.add_environment(
            "REFERRALS_SECRET_KEY_ARN", self.signing_secret.secret_arn
        )
        if settings.stripe_webhook_secret_arn:
            # Stripe's signing secret of the webhook endpoint: the operator's secret (the
            # value comes from Stripe), given to the API function by ARN, never by value.
            stripe_secret = secretsmanager.Secret.from_secret_complete_arn(
                self, "StripeWebhookSecret", settings.stripe_webhook_secret_arn
            )
            stripe_secret.grant_read(self.api_function.role)
            self.api_function.function.add_environment(
                "REFERRALS_STRIPE_WEBHOOK_SECRET_ARN", settings.stripe_webhook_secret_arn
            )
        # Payout: claims, assigns, aggregates, writes the report, completes.
        self._grant_table(self.payout_function, storage.main_table, *TABLE_READ, *TABLE_WRITE)
        self._grant_table(self.payout_function, storage.outbox_table, *OUTBOX_APPEND)
        self._grant_reports(self.payout_function, storage.reports)
        # Notify: reads the stream (granted by the event source), publishes, marks
        # delivered; its sweep prunes the delivered events past their retention.
        self._grant_table(self.notify_function, storage.outbox_table, *OUTBOX_UPDATE, *OUTBOX_PRUNE)
        storage.topic.grant_publish(self.notify_function.role)
        storage.outbox_table.grant_stream_read(self.notify_function.role)
        self.outbox_stream = self.notify_function.alias.add_event_source_mapping(
            "OutboxStream",
            event_source_arn=storage.outbox_table.table_stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=100,
            bisect_batch_on_error=True,
            retry_attempts=5,
            max_record_age=Duration.days(1),
            on_failure=sources.SqsDlq(storage.dead_letters),
            # Only new events; the updates that mark them delivered are not news.
            filters=[
                lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.is_equal("INSERT")})
            ],
        )

        # The stream only signals new events; deliveries that failed are retried
        # with backoff when due, so the function also sweeps every minute.
        self.notify_sweep = events.Rule(
            self,
            "NotifySweep",
            rule_name=settings.name("notify-sweep"),
            description="Deliver the outbox events whose retry is due",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[
                targets.LambdaFunction(
                    self.notify_function.alias,
                    retry_attempts=2,
                    max_event_age=Duration.minutes(10),
                )
            ],
        )

        # Every invoker calls a function's alias (SnapStart: infra/functions.py).
        self.api = ReferralsApi(
            self,
            "Api",
            settings=settings,
            function=self.api_function.alias,
            key=storage.key,
        )
        self.payouts = PayoutSchedule(
            self,
            "Payouts",
            settings=settings,
            function=self.payout_function.alias,
            key=storage.key,
        )
        # POST /v1/payouts starts the state machine and answers 202: a run may take far
        # longer than API Gateway waits (29 s). Only StartExecution, on this machine:
        # repeated starts are told apart by execution name (adapters/stepfunctions.py).
        self.payouts.state_machine.grant_start_execution(self.api_function.role)
        self.api_function.function.add_environment(
            "REFERRALS_PAYOUT_STATE_MACHINE_ARN", self.payouts.state_machine.state_machine_arn
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            functions={
                "api": self.api_function.function,
                "payout": self.payout_function.function,
                "notify": self.notify_function.function,
            },
            tables=[storage.main_table, storage.outbox_table],
            stage=self.api.stage,
            state_machine=self.payouts.state_machine,
            rule=self.payouts.rule,
            dead_letters=storage.dead_letters,
            topic=storage.topic,
        )

        outputs = {
            "ApiUrl": self.api.api.url,
            "ReportBucketName": storage.reports.bucket_name,
            "TopicArn": storage.topic.topic_arn,
            "MainTableName": storage.main_table.table_name,
            "OutboxTableName": storage.outbox_table.table_name,
            "PayoutStateMachineArn": self.payouts.state_machine.state_machine_arn,
            "DashboardName": self.monitoring.dashboard.dashboard_name,
        }
        for output_id, value in outputs.items():
            CfnOutput(self, output_id, value=value)

    @staticmethod
    def _grant_table(target: ServiceFunction, table: dynamodb.Table, *actions: str) -> None:
        # Table.grant covers the table and its indexes; grantReadWriteData would add Scan.
        table.grant(target.role, *sorted(set(actions)))

    @staticmethod
    def _grant_reports(target: ServiceFunction, bucket: s3.IBucket) -> None:
        target.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(REPORT_OBJECTS), resources=[bucket.arn_for_objects("*")]
            )
        )
        target.role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(REPORT_BUCKET), resources=[bucket.bucket_arn])
        )
