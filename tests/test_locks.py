"""The locks: requirements.lock serves (`make run`), requirements-dev.lock checks (`make
test`), requirements-lambda.lock is what the Lambda functions ship (infra/lambda_asset.py).

The first two install into one venv, so the dev lock must pin every runtime package at
the same version (or `make test` would change what `make run` serves with), and the
runtime lock must hold every package the code imports (or `make run` would fail); the
Lambda handlers' (`referrals.aws`) come from the Lambda lock, at the runtime lock's
versions where both have a package.
"""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {normalized(name): version for name, version in PIN.findall(text)}


LAMBDA = ROOT / "src" / "referrals" / "aws"


def imported_modules(*, on_lambda: bool = False) -> set[str]:
    """The top-level modules the package imports, lazily imported ones included: those
    of the Lambda handlers, or of the rest."""
    found = set()
    for path in (ROOT / "src" / "referrals").rglob("*.py"):
        if path.is_relative_to(LAMBDA) != on_lambda:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"referrals"}


def test_the_dev_lock_pins_every_runtime_package_at_the_same_version() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert "fastapi" in runtime and "pytest" in dev and "pytest" not in runtime
    assert {name: dev.get(name) for name in runtime} == runtime


def test_every_module_the_package_imports_comes_from_the_runtime_lock() -> None:
    runtime = pins("requirements.lock")
    distributions = packages_distributions()
    modules = imported_modules()
    assert {"fastapi", "sqlalchemy", "boto3"} <= modules
    missing = {
        module: distributions.get(module)
        for module in modules
        if not any(normalized(d) in runtime for d in distributions.get(module, []))
    }
    assert missing == {}


def test_every_module_the_lambda_handlers_import_comes_from_the_lambda_lock() -> None:
    runtime, on_lambda = pins("requirements.lock"), pins("requirements-lambda.lock")
    distributions = packages_distributions()
    modules = imported_modules(on_lambda=True)
    assert {"boto3", "snapshot_restore_py"} <= modules
    missing = {
        module: distributions.get(module)
        for module in modules
        if not any(normalized(d) in on_lambda for d in distributions.get(module, []))
    }
    assert missing == {}
    shared = on_lambda.keys() & runtime.keys()
    assert "pydantic" in shared
    assert {name: on_lambda[name] for name in shared} == {name: runtime[name] for name in shared}
