"""The dashboard (real dimensions, not the original's dimensionless metrics) and the alarms."""

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.settings import StageSettings

PERIOD = Duration.minutes(5)
NAMESPACE = "Referrals"
# Powertools Metrics adds `service` (POWERTOOLS_SERVICE_NAME) to every metric.
BUSINESS_DIMENSIONS = {"service": "referrals"}
# `RewardCents`, `ShareCents` (revenue shares earned) and `PayoutCents` per currency
# (aws.observability): a line each, found by a search, since the currencies are the
# programs' (data), not known here.


def per_currency(name: str) -> cw.MathExpression:
    search = f"SEARCH('{{{NAMESPACE},Currency,service}} MetricName=\"{name}\"', 'Sum', "
    return cw.MathExpression(
        expression=f"{search}{PERIOD.to_seconds()})", using_metrics={}, label=name, period=PERIOD
    )


def business_metric(name: str) -> cw.Metric:
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map=BUSINESS_DIMENSIONS,
        statistic=cw.Stats.SUM,
        period=PERIOD,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: StageSettings,
        functions: Mapping[str, lambda_.Function],
        tables: Sequence[dynamodb.Table],
        stage: apigw.Stage,
        state_machine: sfn.StateMachine,
        rule: events.Rule,
        dead_letters: sqs.Queue,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=settings.prefix,
            default_interval=Duration.days(7),
        )
        self.dashboard.add_widgets(
            cw.TextWidget(
                markdown=f"# referrals ({settings.stage})\nSignups, rewards and payouts.",
                width=24,
                height=1,
            )
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Signups",
                left=[business_metric("Signups")],
                right=[per_currency("RewardCents"), per_currency("ShareCents")],
                width=12,
            ),
            cw.GraphWidget(
                title="Payouts",
                left=[business_metric("PayoutsCompleted")],
                right=[per_currency("PayoutCents")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="API requests and errors",
                left=[
                    stage.metric_count(period=PERIOD),
                    stage.metric_client_error(period=PERIOD),
                    stage.metric_server_error(period=PERIOD),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="API latency",
                left=[
                    stage.metric_latency(period=PERIOD, statistic="p50"),
                    stage.metric_latency(period=PERIOD, statistic="p99"),
                    stage.metric_integration_latency(period=PERIOD, statistic="p99"),
                ],
                width=12,
            ),
        )
        for function in functions.values():
            name = function.function_name
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title=f"{name}: invocations, errors, throttles",
                    left=[
                        function.metric_invocations(period=PERIOD),
                        function.metric_errors(period=PERIOD),
                        function.metric_throttles(period=PERIOD),
                    ],
                    width=12,
                ),
                cw.GraphWidget(
                    title=f"{name}: duration",
                    left=[
                        function.metric_duration(period=PERIOD, statistic="p50"),
                        function.metric_duration(period=PERIOD, statistic="p99"),
                    ],
                    width=12,
                ),
            )
        for table in tables:
            name = table.table_name
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title=f"{name}: consumed capacity",
                    left=[
                        table.metric_consumed_read_capacity_units(period=PERIOD),
                        table.metric_consumed_write_capacity_units(period=PERIOD),
                    ],
                    width=12,
                ),
                cw.GraphWidget(
                    title=f"{name}: throttled requests",
                    left=[
                        table.metric("ReadThrottleEvents", statistic=cw.Stats.SUM, period=PERIOD),
                        table.metric("WriteThrottleEvents", statistic=cw.Stats.SUM, period=PERIOD),
                    ],
                    width=12,
                ),
            )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Payout runs",
                left=[
                    state_machine.metric_started(period=PERIOD),
                    state_machine.metric_succeeded(period=PERIOD),
                    state_machine.metric_failed(period=PERIOD),
                    state_machine.metric_timed_out(period=PERIOD),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Undelivered notifications (dead letters)",
                left=[dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD)],
                width=12,
            ),
        )

        action = cw_actions.SnsAction(topic)
        self.alarms: list[cw.Alarm] = []

        def alarm(construct_id: str, suffix: str, metric: cw.IMetric, description: str) -> None:
            created = cw.Alarm(
                self,
                construct_id,
                alarm_name=settings.name(suffix),
                alarm_description=description,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(action)
            self.alarms.append(created)

        for short, function in functions.items():
            alarm(
                f"{short.capitalize()}Errors",
                f"{short}-errors",
                function.metric_errors(period=PERIOD),
                f"{function.function_name} raised errors",
            )
        alarm(
            "Api5xx",
            "api-5xx",
            stage.metric_server_error(period=PERIOD),
            "The API answered 5xx",
        )
        alarm(
            "PayoutFailed",
            "payout-failed",
            cw.MathExpression(
                expression="failed + timedOut + aborted",
                using_metrics={
                    "failed": state_machine.metric_failed(period=PERIOD),
                    "timedOut": state_machine.metric_timed_out(period=PERIOD),
                    "aborted": state_machine.metric_aborted(period=PERIOD),
                },
                label="Payout runs that did not succeed",
                period=PERIOD,
            ),
            "A payout run failed, timed out or was aborted",
        )
        alarm(
            "ScheduleFailed",
            "schedule-failed",
            cw.Metric(
                namespace="AWS/Events",
                metric_name="FailedInvocations",
                dimensions_map={"RuleName": rule.rule_name},
                statistic=cw.Stats.SUM,
                period=PERIOD,
            ),
            "The monthly schedule could not start the payout",
        )
        alarm(
            "DeadLetters",
            "dead-letters",
            dead_letters.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic=cw.Stats.MAXIMUM
            ),
            "Notifications or invocations landed in the dead-letter queue",
        )
