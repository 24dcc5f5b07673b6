"""cdk-nag's AwsSolutions and Serverless packs on the app, and every finding this design accepts,
acknowledged with its reason. A synth with an unacknowledged finding fails (CDK's policy
validation); a test synthesizes the app."""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct

STACK_WIDE: dict[str, str] = {}


def checked(app: cdk.App, stack: cdk.Stack) -> cdk.Stack:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True), ServerlessChecks(app, verbose=True))
    acknowledge(stack, STACK_WIDE)
    return stack


def acknowledge(construct: IConstruct, findings: dict[str, str]) -> None:
    """Accept these findings (``{rule or rule[finding]: reason}``) on the construct and below it."""
    if findings:
        cdk.Validations.of(construct).acknowledge(
            *(cdk.Acknowledgment(id=rule, reason=reason) for rule, reason in findings.items())
        )
