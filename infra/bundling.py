"""The Lambda code asset: the project and its runtime dependencies, bundled without Docker.

The runtime dependencies are the project's own (`[project].dependencies` in
pyproject.toml), pinned by requirements.lock used as a constraints file, and
installed as Linux x86_64 CPython 3.12 wheels whatever the build machine is
(`--platform`/`--only-binary`), so no package is ever compiled here. The package
itself is copied from `src/referrals`.
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "referrals"
PYTHON_VERSION = "3.12"
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux2014
# (glibc 2.17) wheels, and the newer manylinux_2_28 ones some packages ship.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")

# Only these inputs are hashed for the asset, so the asset changes exactly when
# the code or the dependencies do (and fingerprinting skips .venv and friends).
ASSET_EXCLUDE = [
    "*",
    ".*",
    "!pyproject.toml",
    "!requirements.lock",
    "!src",
    f"!src/{PACKAGE}",
    f"!src/{PACKAGE}/**",
    "**/__pycache__",
    "**/*.pyc",
]


def runtime_requirements(project_root: Path = PROJECT_ROOT) -> list[str]:
    """The project's runtime dependencies, as declared in its pyproject.toml."""
    pyproject = tomllib.loads((project_root / "pyproject.toml").read_text())
    return [str(requirement) for requirement in pyproject["project"]["dependencies"]]


def pip_command(output_dir: str, project_root: Path = PROJECT_ROOT) -> list[str]:
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    constraints = project_root / "requirements.lock"
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        # Byte code compiled by this interpreter would be for the wrong version.
        "--no-compile",
        "--target",
        output_dir,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        *platforms,
        "--only-binary=:all:",
        *(["--constraint", str(constraints)] if constraints.exists() else []),
        *runtime_requirements(project_root),
    ]


@jsii.implements(ILocalBundling)
class LocalPythonBundling:
    """Bundles on the build machine with pip; never falls back to Docker."""

    def __init__(self, project_root: Path = PROJECT_ROOT) -> None:
        self.project_root = project_root

    # jsii calls back with the options as one positional struct, whatever the
    # keyword-expanded signature of the generated interface says.
    def try_bundle(self, output_dir: str, options: BundlingOptions | None = None, **_: Any) -> bool:
        subprocess.run(pip_command(output_dir, self.project_root), check=True)
        shutil.copytree(
            self.project_root / "src" / PACKAGE,
            Path(output_dir) / PACKAGE,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        return True


def lambda_code(project_root: Path = PROJECT_ROOT) -> lambda_.Code:
    """The one asset all the functions share (they differ only by handler)."""
    return lambda_.Code.from_asset(
        str(project_root),
        exclude=ASSET_EXCLUDE,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=lambda_.Runtime.PYTHON_3_12.bundling_image,
            local=LocalPythonBundling(project_root),
        ),
    )
