"""Lambda cold start of the API handler: import time and app build time, per fresh process.

Floor: a bare interpreter start in the same run. Each sample is a new process,
as each cold start is a new Lambda runtime.

    python -m bench.cold_start [--runs 10]
"""

import argparse
import json
import statistics
import subprocess
import sys

IMPORT = """
import time
t0 = time.perf_counter()
import referrals.aws.api
t1 = time.perf_counter()
print(t1 - t0)
"""

# Everything a first invocation does before its first DynamoDB call: import, build
# the adapters (boto3 clients for DynamoDB, S3, SNS), the FastAPI app and Mangum.
FIRST_REQUEST = """
import os, time
os.environ["REFERRALS_DATABASE_URL"] = "dynamodb://referrals-bench"
os.environ["REFERRALS_REPORTS_URL"] = "s3://bench/"
os.environ["REFERRALS_NOTIFY_URL"] = "arn:aws:sns:us-east-2:123456789012:bench"
# As a deployed function has one (from Secrets Manager): none would be read from the table.
os.environ["REFERRALS_SECRET_KEY"] = "bench-secret-bench-secret-bench-secret"
t0 = time.perf_counter()
from referrals.aws import api
api._app()
print(time.perf_counter() - t0)
"""


def sample(code: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    )
    return float(out.stdout.split()[-1])


def wall(code: str, env: dict[str, str]) -> float:
    import time

    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    import os

    env = {
        **os.environ,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-2",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }
    floor = statistics.median(wall("pass", env) for _ in range(args.runs))
    imports = statistics.median(sample(IMPORT, env) for _ in range(args.runs))
    first = statistics.median(sample(FIRST_REQUEST, env) for _ in range(args.runs))
    result = {
        "interpreter_start_s": round(floor, 3),
        "import_handler_s": round(imports, 3),
        "import_and_build_app_s": round(first, 3),
        "first_request_vs_interpreter": round(first / floor, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
