"""Lambda cold start of the three functions, each run from the deployed asset's own folder.

The asset is built as `cdk synth` builds it (infra.lambda_asset: the Lambda
dependency set alone, CPython 3.12 byte code) into a temporary folder. Each sample
is a new CPython 3.12 process started on that folder, as Lambda starts one, with
the environment the stack gives the function (tracing on), answering one
real-shaped event. Its AWS calls go over HTTP to a moto server on 127.0.0.1
holding the stack's tables, bucket, topic and signing secret:

- api: `POST /signup` through API Gateway's proxy event (a new user each sample);
- payout: the hourly `{"retry": true}` check with nothing to retry (the payout
  function's usual invocation), and payout_month: one step of a month's run (a new
  month each sample: claim, report, complete, about thirty AWS calls);
- notify: an outbox stream batch after one signup, its events published to the topic.

Two figures per function, medians of fresh processes:

- fresh: import the handler, build (settings, clients, app) and answer: a cold start
  without SnapStart;
- restored: the handler imported and its before-snapshot hooks run first (what the
  SnapStart snapshot holds), then its after-restore hooks and the answer: what a
  restored instance does before its first response. Lambda's resume of the snapshot
  itself is not in it (it cannot be run here).

Each is wall time and the process's CPU time over the same span (the moto server's
CPU is not in it; `moto_call_ms` is one GetItem's round trip to it). Floor: a bare
interpreter start (`python3.12 -s -c pass`) in the same run. Two outside references,
started the same way from the same folder, show what the libraries alone cost on this
machine, which no change to this project's code can go below:

- boto3_call: import boto3, make a DynamoDB client, read one item: the least a function
  that reads its table does (payout and notify are measured against it);
- fastapi_app: a FastAPI app of one route with a pydantic body, behind Mangum, answering
  the same API Gateway event with one DynamoDB read (the api function's reference).

    python -m bench.cold_start [--runs 10]

Needs a CPython 3.12 (found by uv, as the asset build does) and network access to
PyPI the first time (uv caches the wheels): the asset's, and Flask for the moto server.
"""

import argparse
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import lambda_asset

REGION = "us-east-2"
ACCOUNT = "123456789012"
PREFIX = "referrals-bench"
BUCKET = "referrals-bench-reports"
# moto's server mode runs on Flask, which the dev venv does not hold: these pins go
# into a folder of their own, beside the dev venv's moto.
MOTO_SERVER_PACKAGES = ("flask==3.1.3", "flask-cors==6.0.5", "blinker==1.9.0")
UV_INSTALL = (sys.executable, "-m", "uv", "pip", "install", "--quiet")

# What Lambda sets for a sampled invocation: the X-Ray SDK's segment for the handler.
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

FRESH = """
import json, time
t0, c0 = time.perf_counter(), time.process_time()
from {module} import handler
t1 = time.perf_counter()
result = handler({event!r}, Context())
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({{"import_s": t1 - t0, "first_response_s": t2 - t0, "cpu_s": c2 - c0,
                   "result": result}}, default=str))
"""

# The runtime's order: before the snapshot in reverse order of registration, after the
# restore in order.
RESTORED = """
import json, time
from snapshot_restore_py import get_after_restore, get_before_snapshot
from {module} import handler
for hook, args, kwargs in reversed(get_before_snapshot()):
    hook(*args, **kwargs)
t0, c0 = time.perf_counter(), time.process_time()
for hook, args, kwargs in get_after_restore():
    hook(*args, **kwargs)
result = handler({event!r}, Context())
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({{"first_response_s": t2 - t0, "cpu_s": c2 - c0, "result": result}},
                 default=str))
"""

# The references: the same clock as FRESH, around code that is not this project's.
BOTO3_CALL = """
import json, time
t0, c0 = time.perf_counter(), time.process_time()
import boto3
key = {{"pk": {{"S": "x"}}, "sk": {{"S": "x"}}}}
boto3.client("dynamodb").get_item(TableName={table!r}, Key=key)
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({{"first_response_s": t2 - t0, "cpu_s": c2 - c0, "result": None}}))
"""

FASTAPI_APP = """
import json, time
t0, c0 = time.perf_counter(), time.process_time()
import boto3
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

class Signup(BaseModel):
    userId: str
    referralCode: str

app = FastAPI()
table = boto3.client("dynamodb")

@app.post("/signup")
def signup(body: Signup) -> dict[str, str]:
    table.get_item(TableName={table!r}, Key={{"pk": {{"S": body.userId}}, "sk": {{"S": "x"}}}})
    return {{"message": "Signup successful"}}

result = Mangum(app, lifespan="off")({event!r}, Context())
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({{"first_response_s": t2 - t0, "cpu_s": c2 - c0, "result": result}}))
"""

# reference: (its code, whether its answer is a success, the functions measured against it)
REFERENCES: dict[str, tuple[str, Callable[[Any], bool], tuple[str, ...]]] = {
    "boto3_call": (BOTO3_CALL, lambda answer: answer is None, ("payout", "payout_month", "notify")),
    "fastapi_app": (FASTAPI_APP, lambda answer: answer["statusCode"] == 200, ("api",)),
}

CONTEXT = """
class Context:
    function_name = "{name}"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:{region}:{account}:function:{name}:live"
    aws_request_id = "6f1b2c3d-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self):
        return 900_000
"""


class ParentContext:
    """The context object of the enrolling call this process makes itself."""

    function_name = f"{PREFIX}-setup"
    memory_limit_in_mb = 1024
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PREFIX}-setup"
    aws_request_id = "6f1b2c3d-0000-4000-8000-000000000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def moto_server(workdir: Path) -> Iterator[str]:
    """A moto server on 127.0.0.1, stopped on exit; yields its endpoint URL."""
    overlay = workdir / "moto-server"
    subprocess.run(
        [*UV_INSTALL, "--no-deps", "--target", str(overlay), *MOTO_SERVER_PACKAGES],
        check=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "PYTHONPATH": str(overlay)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def aws_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }


@dataclass
class Prepared:
    """What the samples need from the moto server's setup."""

    environment: dict[str, str]  # the stack's variables (infra/stack.py)
    secret_arn: str
    key: str  # an admin key
    signup: Callable[[str], None]  # signs a user up through this process's API handler
    call_ms: float  # one GetItem's round trip to the moto server


def prepare(endpoint: str) -> Prepared:
    """The stack's resources on the moto server, a referrer and an admin key."""
    os.environ.update(aws_environment(endpoint))
    import boto3

    from referrals.adapters.clock import SystemClock
    from referrals.bootstrap import build
    from referrals.domain.model import Role
    from referrals.services.keys import create_key

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    topic = boto3.client("sns").create_topic(Name=f"{PREFIX}-notifications")["TopicArn"]
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"{PREFIX}-signing-secret", SecretString="s" * 64
    )["ARN"]
    environment = {
        "REFERRALS_DATABASE_URL": f"dynamodb://{PREFIX}",
        "REFERRALS_REPORTS_URL": f"s3://{BUCKET}/",
        "REFERRALS_NOTIFY_URL": topic,
        "REFERRALS_SCHEDULER": "off",
        "POWERTOOLS_SERVICE_NAME": "referrals",
        "POWERTOOLS_METRICS_NAMESPACE": "Referrals",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
    }
    os.environ.update(environment)
    # This process's own API handler, with the secret's value rather than its ARN.
    os.environ["REFERRALS_SECRET_KEY"] = "s" * 64
    svc = build(create_tables=True)
    key, _ = create_key(svc.store, SystemClock(), Role.ADMIN)
    from referrals.aws.api import handler

    def post(path: str, body: dict[str, str], status: int) -> None:
        answer = handler(rest_event(key, path, body), ParentContext())
        if answer["statusCode"] != status:
            raise RuntimeError(f"the bench's own POST {path} failed: {answer}")

    post("/v1/referrers", {"user_id": "alice", "code": "ALICE"}, 201)
    dynamodb = boto3.client("dynamodb")
    round_trips = []
    for _ in range(20):
        start = time.perf_counter()
        dynamodb.get_item(TableName=f"{PREFIX}-main", Key={"pk": {"S": "x"}, "sk": {"S": "x"}})
        round_trips.append(time.perf_counter() - start)
    return Prepared(
        environment=environment,
        secret_arn=secret,
        key=key,
        signup=lambda user: post("/signup", {"userId": user, "referralCode": "ALICE"}, 200),
        call_ms=statistics.median(round_trips) * 1000,
    )


# function: (handler module, whether the function's answer is a success)
CASES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "api": ("referrals.aws.api", lambda answer: answer["statusCode"] == 200),
    "payout": ("referrals.aws.payout", lambda answer: answer["done"] is True),
    "payout_month": ("referrals.aws.payout", lambda answer: answer["status"] == "completed"),
    "notify": (
        "referrals.aws.notify",
        lambda answer: answer["delivered"] >= 1 and answer["failed"] == 0,
    ),
}


def event(name: str, run: int, prepared: Prepared) -> dict[str, Any]:
    """The sample's event; for notify, a signup first makes its events to deliver."""
    if name == "api":
        body = {"userId": f"bench-user-{run}", "referralCode": "ALICE"}
        return rest_event(prepared.key, "/signup", body)
    if name == "payout":
        return {"retry": True}
    if name == "payout_month":  # a month of its own, each run paying it from scratch
        return {"period": f"{2001 + run // 12}-{run % 12 + 1:02d}"}
    prepared.signup(f"bench-notified-{run}")
    return {"Records": [{"eventName": "INSERT", "eventSource": "aws:dynamodb"}]}


def rest_event(key: str, path: str, body: dict[str, str]) -> dict[str, Any]:
    """A POST as API Gateway's REST proxy integration sends it."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Host": "a1b2c3d4e5.execute-api.us-east-2.amazonaws.com",
        },
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": "POST",
            "path": f"/prod{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "requestId": "c0ffee00-0000-4000-8000-000000000001",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "bench"},
            "apiId": "a1b2c3d4e5",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def function_environment(
    name: str, asset: Path, endpoint: str, prepared: Prepared
) -> dict[str, str]:
    """What Lambda and the stack set for the function (infra/stack.py)."""
    short = name.split("_")[0]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(asset),
        "LAMBDA_TASK_ROOT": str(asset),
        "AWS_LAMBDA_FUNCTION_NAME": f"{PREFIX}-{short}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "_HANDLER": f"{CASES[name][0]}.handler",
        # Tracing is active on the functions: the X-Ray SDK records, and sends its
        # segments by UDP to the daemon's address (nothing listens here; UDP won't tell).
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        **aws_environment(endpoint),
        **prepared.environment,
    }
    if short == "api":
        env["REFERRALS_SECRET_KEY_ARN"] = prepared.secret_arn
    return env


def sample(python: str, asset: Path, env: dict[str, str], code: str) -> dict[str, Any]:
    # -s: no user site; -B: the asset's byte code is read, never rewritten.
    out = subprocess.run(
        [python, "-s", "-B", "-c", code],
        cwd=asset,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return figures


def medians(samples: list[dict[str, Any]], floor: float) -> dict[str, float]:
    first = statistics.median(s["first_response_s"] for s in samples)
    figures = {
        "first_response_s": round(first, 3),
        "cpu_s": round(statistics.median(s["cpu_s"] for s in samples), 3),
        "vs_interpreter": round(first / floor, 1),
    }
    if "import_s" in samples[0]:
        figures["import_s"] = round(statistics.median(s["import_s"] for s in samples), 3)
    return figures


def python_version(python: str) -> str:
    code = "import platform; print(platform.python_version())"
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def interpreter_start(python: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([python, "-s", "-c", "pass"], check=True, env={"PATH": os.environ["PATH"]})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="referrals-cold-start-") as tmp:
        workdir = Path(tmp)
        asset = workdir / "asset"
        asset.mkdir()
        lambda_asset.build(asset)
        python = lambda_asset.lambda_python()
        floor = interpreter_start(python, runs)
        result: dict[str, Any] = {
            "python": python_version(python),
            "asset_mb": round(lambda_asset.size_bytes(asset) / 2**20, 1),
            "interpreter_start_s": round(floor, 3),
        }
        with moto_server(workdir) as endpoint:
            prepared = prepare(endpoint)
            result["moto_call_ms"] = round(prepared.call_ms, 1)
            references = measure_references(python, asset, endpoint, prepared, runs, floor)
            result["references"] = references
            numbers = itertools.count(1)  # each sample's own user, month or event
            for name, (module, success) in CASES.items():
                env = function_environment(name, asset, endpoint, prepared)
                result[name] = {}
                for mode, template in (("fresh", FRESH), ("restored", RESTORED)):
                    # A generator: each event is made just before its sample runs.
                    codes = (
                        context_of(env)
                        + template.format(module=module, event=event(name, run, prepared))
                        for run in itertools.islice(numbers, runs)
                    )
                    samples = sampled(python, asset, env, codes, success, name)
                    result[name][mode] = medians(samples, floor)
                reference = next(r for r, (_, _, of) in REFERENCES.items() if name in of)
                fresh = result[name]["fresh"]
                fresh["vs_" + reference] = round(
                    fresh["first_response_s"] / references[reference]["first_response_s"], 2
                )
        return result


def measure_references(
    python: str, asset: Path, endpoint: str, prepared: Prepared, runs: int, floor: float
) -> dict[str, dict[str, float]]:
    """The outside references' medians, from the api function's folder and environment."""
    env = function_environment("api", asset, endpoint, prepared)
    figures = {}
    for name, (template, success, _) in REFERENCES.items():
        codes = (
            context_of(env)
            + template.format(
                table=f"{PREFIX}-main",
                event=rest_event(
                    prepared.key, "/signup", {"userId": f"reference-{run}", "referralCode": "ALICE"}
                ),
            )
            for run in range(runs)
        )
        figures[name] = medians(sampled(python, asset, env, codes, success, name), floor)
    return figures


def context_of(env: dict[str, str]) -> str:
    """The Lambda context object of the function `env` is the environment of."""
    return CONTEXT.format(name=env["AWS_LAMBDA_FUNCTION_NAME"], region=REGION, account=ACCOUNT)


def sampled(
    python: str,
    asset: Path,
    env: dict[str, str],
    codes: Iterable[str],
    success: Callable[[Any], bool],
    what: str,
) -> list[dict[str, Any]]:
    """Each of `codes` run as a fresh process (`sample`); each must answer a success."""
    samples = []
    for code in codes:
        figures = sample(python, asset, env, code)
        if not success(figures["result"]):
            raise RuntimeError(f"{what}: the first response failed: {figures}")
        samples.append(figures)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(measure(args.runs), indent=2))


if __name__ == "__main__":
    main()
