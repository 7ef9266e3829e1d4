"""The monthly payout: an EventBridge schedule starts a state machine that calls the
payout function until the run says it is done. `POST /v1/payouts` starts it too (the
API function's grant is in stack.py), with `{period}` as the input.

Each invocation works for a slice of its time limit and returns
`{period, owner, done}`; the next one continues the same run (the lease owner)
from where the store says it is, so a run of any size finishes, and a crash or a
timeout in the middle is only a retry: the run is resumable by design.
"""

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.functions import encrypted_log_group
from infra.settings import StageSettings

# 00:00 UTC on the 1st: the month just ended is paid.
SCHEDULE = events.Schedule.cron(minute="0", hour="0", day="1", month="*", year="*")
# A run that failed (report bucket down, ...) holds its month's rewards, and no later
# month is paid before it completes: it is tried again every hour until it does. With
# nothing to retry, the function answers at once.
RETRY_SCHEDULE = events.Schedule.rate(Duration.hours(1))


class PayoutSchedule(Construct):
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
        name = settings.name("payout")

        invoke = tasks.LambdaInvoke(
            self,
            "Pay a slice",
            lambda_function=function,
            # The state is {time?, period?, owner?}; the function answers
            # {period, owner, done, status}.
            payload_response_only=True,
            retry_on_service_exceptions=True,
        )
        # Reserved concurrency 1: a manual run beside the scheduled one waits its turn.
        invoke.add_retry(
            errors=["Lambda.TooManyRequestsException"],
            interval=Duration.seconds(10),
            max_attempts=10,
            backoff_rate=2,
        )
        # A crash or a timeout: the run's lease lapses within a minute, then the
        # next invocation takes the run over where it stopped.
        invoke.add_retry(
            errors=["States.TaskFailed", "States.Timeout"],
            interval=Duration.seconds(30),
            max_attempts=4,
            backoff_rate=2,
        )
        carry_on = sfn.Pass(
            self,
            "Continue the run",
            parameters={"period.$": "$.period", "owner.$": "$.owner"},
        )
        done = sfn.Choice(self, "Done?")
        definition = invoke.next(
            done.when(
                sfn.Condition.boolean_equals("$.done", True), sfn.Succeed(self, "Paid")
            ).otherwise(carry_on.next(invoke))
        )

        # The vendedlogs prefix keeps the log delivery resource policy small.
        logs_name = f"/aws/vendedlogs/states/{name}"
        self.log_group = encrypted_log_group(self, "Logs", logs_name, key)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=Duration.hours(24),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=True,
            ),
        )

        self.rule = events.Rule(
            self,
            "Monthly",
            rule_name=settings.name("monthly-payout"),
            description="Pay the month just ended, at 00:00 UTC on the 1st",
            schedule=SCHEDULE,
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    # The scheduled time names the month just ended.
                    input=events.RuleTargetInput.from_object({"time": events.EventField.time}),
                    retry_attempts=10,
                    max_event_age=Duration.hours(6),
                )
            ],
        )
        self.retry_rule = events.Rule(
            self,
            "Retry",
            rule_name=settings.name("payout-retry"),
            description="Run again a payout run that failed, then the month behind it",
            schedule=RETRY_SCHEDULE,
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    input=events.RuleTargetInput.from_object({"retry": True}),
                    retry_attempts=2,
                    max_event_age=Duration.hours(1),
                )
            ],
        )
