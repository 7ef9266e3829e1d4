"""`make bench`: every benchmark, one after the other, with its default sizes."""

import subprocess
import sys

BENCHMARKS = [
    "bench.payout",
    "bench.signup_http",
    "bench.dynamodb_capacity",
    "bench.cold_start",
    "bench.dashboard",
]


def main() -> None:
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        subprocess.run([sys.executable, "-m", module], check=True)


if __name__ == "__main__":
    main()
