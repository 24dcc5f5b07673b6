"""Each role's synthesized policy in a readable, reviewable form: CloudFormation's references written
as ``${AWS::Region}`` or ``${table:carts.StreamArn}``, as a reviewer reads an ARN. The reviewed
copies are ``infra/policies/<role>.json``; ``make infra-policies`` writes them anew from the app
(review the diff before committing it)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

EXPECTED_DIR = Path(__file__).resolve().parent / "policies"
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def _logical_id(stack: cdk.Stack, construct: Any) -> str:
    return str(stack.resolve(stack.get_logical_id(construct.node.default_child)))


def render(value: Any, names: dict[str, str]) -> Any:
    """CloudFormation intrinsics as ``${...}`` strings: ``Ref`` of a pseudo parameter or a
    resource, ``Fn::GetAtt`` and ``Fn::Join`` of them; ``names`` turns logical IDs into names."""
    if isinstance(value, list):
        return [render(v, names) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return "${" + (names.get(value["Ref"]) or value["Ref"]) + "}"
    if "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        return "${" + (names.get(resource) or resource) + "." + attribute + "}"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(p, names) for p in parts)
    return {k: render(v, names) for k, v in value.items()}


def role_policies(stack: cdk.Stack, template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """role name -> ``{"Statement": [...], "ManagedPolicies": [...]}``: the statements of every
    inline policy attached to the role, rendered, and the managed policies it holds."""
    from .stack import HybridsiteStack

    assert isinstance(stack, HybridsiteStack)
    names = {_logical_id(stack, table): f"table:{name}" for name, table in stack.tables.items()}
    names.update({_logical_id(stack, q): "queue:writeback-failures" for q in [stack.writeback_failures]})
    names.update({_logical_id(stack, s): f"secret:{n}" for n, s in stack.secrets.items()})
    roles: dict[str, iam.IRole] = {**stack.roles, "writeback-lambda": stack.writeback.role}  # type: ignore[dict-item]
    found: dict[str, dict[str, Any]] = {}
    for role_name, role in roles.items():
        role_id = _logical_id(stack, role)
        statements = [
            statement
            for resource in template["Resources"].values()
            if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        ]
        managed = template["Resources"][role_id]["Properties"].get("ManagedPolicyArns", [])
        found[role_name] = {"Statement": render(statements, names), "ManagedPolicies": render(managed, names)}
    return found


def concrete(document: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """A rendered policy with each ``${...}`` replaced from ``values`` (a KeyError names a missing
    one): the document IAM would hold in one account and region."""
    text = json.dumps(document)
    return json.loads(PLACEHOLDER.sub(lambda m: values[m.group(1)], text))


def expected(role: str) -> dict[str, Any]:
    return json.loads((EXPECTED_DIR / f"{role}.json").read_text())


def write(policies: dict[str, dict[str, Any]]) -> None:
    EXPECTED_DIR.mkdir(exist_ok=True)
    for role, document in policies.items():
        (EXPECTED_DIR / f"{role}.json").write_text(json.dumps(document, indent=2) + "\n")


def main() -> None:
    """Synthesize the app and write every role's policy into ``infra/policies/``."""
    import tempfile

    from .app import setup_django, synthesized

    setup_django()
    with tempfile.TemporaryDirectory() as code, tempfile.TemporaryDirectory() as out:
        # the Lambda's code (an empty directory here) plays no part in its role
        stack, template = synthesized(cdk.App(context={"lambdaAsset": code}, outdir=out))
    write(role_policies(stack, template))


if __name__ == "__main__":
    main()
