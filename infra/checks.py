"""checkov checks skipped in the template itself, each with its written reason."""

from aws_cdk import CfnResource
from constructs import IConstruct


def _resource(construct: IConstruct) -> CfnResource:
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    return resource


def skip_checkov(construct: IConstruct, check_id: str, reason: str) -> None:
    """Add `Metadata.checkov.skip: [{id, comment}]` to the construct's resource."""
    resource = _resource(construct)
    current = resource.get_metadata("checkov") or {}
    skips = [*current.get("skip", []), {"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", {**current, "skip": skips})
