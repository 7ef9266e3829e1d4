"""The Lambda code asset, bundled on this machine without Docker.

What goes in it (the Lambda dependency set from requirements-lambda.lock, the
package, CPython 3.12 byte code) is `infra.lambda_asset`, plain Python that the
cold start benchmark builds too; this module hands it to the CDK.
"""

from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.lambda_asset import LOCK, PACKAGE, PROJECT_ROOT, build

# Only these inputs are hashed for the asset, so the asset changes exactly when
# the code or the dependency pins do (and fingerprinting skips .venv and friends).
ASSET_EXCLUDE = [
    "*",
    ".*",
    f"!{LOCK}",
    "!src",
    f"!src/{PACKAGE}",
    f"!src/{PACKAGE}/**",
    "**/__pycache__",
    "**/*.pyc",
]


@jsii.implements(ILocalBundling)
class LocalPythonBundling:
    """Bundles on the build machine with uv; never falls back to Docker."""

    def __init__(self, project_root: Path = PROJECT_ROOT) -> None:
        self.project_root = project_root

    # jsii calls back with the options as one positional struct, whatever the
    # keyword-expanded signature of the generated interface says.
    def try_bundle(self, output_dir: str, options: BundlingOptions | None = None, **_: Any) -> bool:
        build(Path(output_dir), self.project_root)
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
