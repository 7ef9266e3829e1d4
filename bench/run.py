"""`make bench`: every benchmark, one after the other, with its default sizes."""

import subprocess
import sys

BENCHMARKS = [
    "bench.payout",
    "bench.payout --database postgresql",
    "bench.signup_http",
    "bench.signup_http --database postgresql",
    "bench.signup_peers",
    "bench.signup_peers --database postgresql",
    "bench.outbox",
    "bench.outbox --database postgresql",
    "bench.dynamodb_capacity",
    "bench.cold_start",
    "bench.dashboard",
]


def main() -> None:
    for command in BENCHMARKS:  # a module, and its arguments if any
        print(f"== {command}", flush=True)
        subprocess.run([sys.executable, "-m", *command.split()], check=True)


if __name__ == "__main__":
    main()
