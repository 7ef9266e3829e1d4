"""The Lambda code asset's content, built in a folder: plain Python, no CDK.

`infra.bundling` builds it for `cdk synth`; `bench.cold_start` builds the same
folder and starts the handlers from it, so what is measured is what is deployed.

- The dependencies are the `lambda` extra alone, pinned by requirements-lambda.lock
  (`make lambda-lock`): no server, SQL or CLI packages. uv installs them as Linux
  x86_64 CPython 3.12 wheels whatever the build machine is, so nothing is compiled.
- botocore keeps the models of the services the functions call (SERVICES) and of
  none of the 400 others: its data is most of its size.
- stripe keeps the modules its webhook signature check imports (found by running the
  check with Lambda's Python, `STRIPE_CHECK`), and none of its typed classes of the
  whole Stripe API (9 MB): the functions use it for nothing else. Without an API
  client to serve, requests (with charset_normalizer and certifi) goes too; stripe
  falls back on the standard library's urllib, and botocore keeps its own CA bundle.
- Byte code is compiled here by a CPython 3.12, because Lambda cannot write it:
  its code folder is read-only, so without it every cold start compiles every
  module it imports (about 0.3 s for the API handler). The dependencies ship as
  byte code only (`compileall -b`), which keeps the asset under its size limit;
  their tracebacks still name file and line. The project's own modules keep their
  source beside their byte code, as `unchecked-hash` byte code: used whatever
  times the files get in the zip and on Lambda.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "referrals"
LOCK = "requirements-lambda.lock"
PYTHON_VERSION = "3.12"
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 and
# older (manylinux2014) wheels.
PYTHON_PLATFORM = "x86_64-manylinux_2_28"
# The AWS services the handlers make clients for (referrals.bootstrap, aws.runtime),
# and X-Ray, which the X-Ray SDK makes a client for when it runs outside Lambda.
SERVICES = ("dynamodb", "s3", "secretsmanager", "sns", "stepfunctions", "xray")
# Installed as stripe's dependencies, used only by its API client (which no function uses).
STRIPE_ONLY = ("requests", "charset_normalizer", "certifi")
# What api/stripe_webhook.py asks of stripe: a good signature passes, a bad one raises.
STRIPE_CHECK = """
import hashlib, hmac, json, sys, time
import stripe
secret, payload, at = "whsec_check", '{"id": "evt_1"}', int(time.time())
mac = hmac.new(secret.encode(), f"{at}.{payload}".encode(), hashlib.sha256).hexdigest()
tolerance = stripe.Webhook.DEFAULT_TOLERANCE
stripe.WebhookSignature.verify_header(payload.encode(), f"t={at},v1={mac}", secret, tolerance)
try:
    stripe.WebhookSignature.verify_header(payload, f"t={at},v1=00", secret, tolerance)
except stripe.SignatureVerificationError as error:
    error.user_message
else:
    sys.exit("a bad signature passed")
print(json.dumps(sorted(
    m.__file__ for m in list(sys.modules.values())
    if m.__name__.partition(".")[0] == "stripe" and getattr(m, "__file__", None)
)))
"""
# Unzipped, as Lambda counts it: the sum of the files' sizes.
SIZE_LIMIT_BYTES = 30 * 1024 * 1024


class AssetBuildError(RuntimeError):
    """The asset cannot be built on this machine (one line says what is missing)."""


def install_command(output_dir: Path, project_root: Path = PROJECT_ROOT) -> list[str]:
    """uv installs exactly the lock's pins, as Lambda's wheels, into `output_dir`."""
    return [
        sys.executable,
        "-m",
        "uv",
        "pip",
        "install",
        "--quiet",
        "--target",
        str(output_dir),
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PYTHON_PLATFORM,
        "--only-binary",
        ":all:",
        # The lock is complete: nothing is resolved here.
        "--no-deps",
        # The folder is edited below (botocore's data, sources): never uv's cache files.
        "--link-mode",
        "copy",
        "-r",
        str(project_root / LOCK),
    ]


def lambda_python() -> str:
    """A CPython 3.12 to compile the byte code with, found by uv (never downloaded)."""
    # pyenv's shims answer for python3.12 only when a 3.12 is selected: select it.
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "PYENV_VERSION": PYTHON_VERSION}
    found = subprocess.run(
        [sys.executable, "-m", "uv", "python", "find", PYTHON_VERSION],
        capture_output=True,
        text=True,
        env=env,
    )
    if found.returncode != 0 or not found.stdout.strip():
        raise AssetBuildError(
            f"the Lambda asset's byte code needs a CPython {PYTHON_VERSION} (Lambda's): "
            f"install one (pyenv, uv python install, apt); uv said: {found.stderr.strip()}"
        )
    return found.stdout.strip()


def build(output_dir: Path, project_root: Path = PROJECT_ROOT) -> None:
    """Fill `output_dir` with the functions' code and dependencies, ready to zip."""
    python = lambda_python()
    subprocess.run(install_command(output_dir, project_root), check=True)
    # Console scripts: nothing runs them on Lambda.
    shutil.rmtree(output_dir / "bin", ignore_errors=True)
    for model in (output_dir / "botocore" / "data").iterdir():
        if model.is_dir() and model.name not in SERVICES:
            shutil.rmtree(model)
    _trim_stripe(python, output_dir)
    _compile(python, output_dir, output_dir, legacy=True)
    for source in output_dir.rglob("*.py"):
        source.unlink()
    shutil.copytree(
        project_root / "src" / PACKAGE,
        output_dir / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    _compile(python, output_dir, output_dir / PACKAGE, legacy=False)


def _trim_stripe(python: str, output_dir: Path) -> None:
    """Keep of stripe what its signature check imports, and drop what only its API
    client would use (see the module's docstring)."""
    for name in STRIPE_ONLY:
        for found in output_dir.glob(f"{name}*"):  # the package and its dist-info
            shutil.rmtree(found) if found.is_dir() else found.unlink()
    checked = subprocess.run(
        [python, "-s", "-B", "-c", STRIPE_CHECK],
        cwd=output_dir,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(output_dir)},
        check=True,
        capture_output=True,
        text=True,
    )
    used = {Path(file).resolve() for file in json.loads(checked.stdout.splitlines()[-1])}
    package = output_dir / "stripe"
    for module in package.rglob("*.py"):
        if module.resolve() not in used:
            module.unlink()
    for folder in sorted(package.rglob("*"), reverse=True):  # the deepest first
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    shutil.rmtree(package / "data", ignore_errors=True)  # CA certificates for API calls


def _compile(python: str, root: Path, folder: Path, *, legacy: bool) -> None:
    # -p: the paths in tracebacks are the function's (/var/task/...), not this folder's;
    # -q: only a file that does not compile is printed, and fails the build.
    subprocess.run(
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(root),
            "-p",
            "/var/task",
            *(["-b"] if legacy else []),
            str(folder),
        ],
        check=True,
    )


def size_bytes(folder: Path) -> int:
    """The asset's unzipped size, as Lambda counts it against its limits."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
