"""CDK app entry point: `npx aws-cdk deploy -c stage=prod -c region=us-east-2` from infra/.

infra/cdk.json runs it as `python -m infra.app` with the repository root on PYTHONPATH.
"""

import json
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment

from infra.settings import DEFAULT_REGION, DEFAULT_STAGE, ContextError, StageSettings
from infra.stack import ReferralsStack

CDK_JSON = Path(__file__).with_name("cdk.json")
# Context listing the stacks to bundle assets for: none.
SKIP_BUNDLING = "aws:cdk:bundling-stacks"
# What the CDK CLI adds to the app's context, so that a template synthesized
# without it is the one `cdk synth` writes (construct paths, CDKMetadata), but
# for the asset metadata (local paths, for SAM) and, unbundled, the asset.
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:version-reporting": True,
}


def build(app: App, settings: StageSettings | None = None, **kwargs: Any) -> ReferralsStack:
    """The stage's stack, `referrals-<stage>`, in its region (by default both from context)."""
    settings = settings or StageSettings.from_context(app.node)
    return ReferralsStack(
        app,
        settings.prefix,
        settings=settings,
        # Account-agnostic: the deploying credentials choose the account.
        env=Environment(region=settings.region),
        **kwargs,
    )


def cdk_context(**overrides: Any) -> dict[str, Any]:
    """The context `cdk synth` gives the app: infra/cdk.json's (feature flags included)."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return {**context, **CLI_CONTEXT, **overrides}


def synth_template(
    stage: str = DEFAULT_STAGE, region: str = DEFAULT_REGION, *, bundle: bool = False
) -> dict[str, Any]:
    """The stage's CloudFormation template, as `cdk synth` makes it.

    Without `bundle`, the Lambda asset is not built (no pip, no network): the
    template is the same but for the asset's content.
    """
    context = cdk_context(stage=stage, region=region)
    if not bundle:
        context[SKIP_BUNDLING] = []
    app = App(context=context)
    stack = build(app)
    template: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    return template


def main() -> None:
    app = App()
    try:
        build(app)
    except ContextError as error:  # one line for `cdk synth`, not a traceback
        raise SystemExit(f"referrals: {error}") from None
    app.synth()


if __name__ == "__main__":
    main()
