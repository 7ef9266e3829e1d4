"""Starts a payout run as an execution of the payout state machine (AWS Step Functions).

Execution names come from the period, so a repeated start finds the execution under
way instead of starting a second one: StartExecution with the name and input of a
running execution returns that execution (a Standard workflow's idempotency). A name
whose execution has ended (failed, timed out, stopped: the run did not complete, or
the caller would not be starting it) answers ExecutionAlreadyExists, and names are
not reusable for 90 days, so the next attempt takes the next name in the period's
sequence: `payout-2026-10`, `payout-2026-10-2`, ... The sequence is the same for
every caller, so two requests at once still start one execution.
"""

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from referrals.domain.errors import Unavailable

# Ended executions of one period before giving up: each one is a run that stopped
# and was started again, far more than a month ever sees.
MAX_ATTEMPTS = 100


def execution_name(period: str, attempt: int) -> str:
    return f"payout-{period}" if attempt == 1 else f"payout-{period}-{attempt}"


class StepFunctionsPayoutStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.state_machine_arn = state_machine_arn

    def start(self, period: str) -> str:
        # The state machine's first step takes `{period}` and pays that month (after
        # any earlier month whose run stopped), then loops until the run is done.
        payload = json.dumps({"period": period})
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                started = self.client.start_execution(
                    stateMachineArn=self.state_machine_arn,
                    name=execution_name(period, attempt),
                    input=payload,
                )
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code != "ExecutionAlreadyExists":
                    # Throttled, refused or missing: the client sent nothing wrong (503).
                    raise Unavailable(f"the payout could not be started: {code}") from error
                continue
            except BotoCoreError as error:  # no answer (the network, the endpoint)
                raise Unavailable(f"the payout could not be started: {error}") from error
            return str(started["executionArn"])
        raise RuntimeError(
            f"{MAX_ATTEMPTS} executions of {self.state_machine_arn} for {period} have ended"
            " without completing its run: see why in their history"
        )
