"""The two locks: requirements.lock serves (`make run`), requirements-dev.lock checks (`make test`).

Both install into one venv, so the dev lock must pin every runtime package at the
same version (or `make test` would change what `make run` serves with), and the
runtime lock must hold every package the code imports (or `make run` would fail).
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


def imported_modules() -> set[str]:
    """The top-level modules the package imports, lazily imported ones included."""
    found = set()
    for path in (ROOT / "src" / "referrals").rglob("*.py"):
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
