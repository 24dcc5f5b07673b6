"""The CDK app synthesized once per session, in this process (Django is set up by pytest-django),
with cdk-nag's packs: a finding not acknowledged fails the synth."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii runs on the machine's Node (>= 20); its end-of-life notice says nothing about the app.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")


@dataclass
class Synth:
    stack: Any
    template: dict[str, Any]
    outdir: Path


def synthesize(tmp: Path, **context: str) -> Synth:
    import aws_cdk as cdk

    from infra.app import synthesized

    code = tmp / "lambda-code"  # the Lambda's code is a stand-in directory: synth only hashes it
    code.mkdir(exist_ok=True)
    (code / "lambda_entry.py").write_text("")
    app = cdk.App(context={"lambdaAsset": str(code), **context}, outdir=str(tmp / "cdk.out"))
    stack, template = synthesized(app)
    return Synth(stack, template, tmp / "cdk.out")


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Synth:
    return synthesize(tmp_path_factory.mktemp("synth"))
