"""The synthesized app: its tables are the code's (as ``projections_setup`` made them on the
engine), each role's policy is its reviewed file, cdk-nag finds nothing unacknowledged (the synth
itself fails otherwise), cfn-lint and parliament find nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.constants import STREAM_KEYS_ONLY
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from hybridsite.dynamodb import all_tables, client, table_meta, tables_ensure
from infra import access, policies
from infra.tables import table_spec

from .conftest import Synth, synthesize


def _tables(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["TableName"].removeprefix("hybridsite-"): r["Properties"]
        for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::GlobalTable"
    }


def _key_schema(entries: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted((e["AttributeName"], e["KeyType"]) for e in entries)


def test_the_stack_has_a_table_for_every_model_as_projections_setup_made_it(synth: Synth) -> None:
    """Compared with the tables ``projections_setup``'s function created on the engine: keys,
    attribute types, indexes, stream, TTL; and the stack adds on-demand billing and PITR. (The
    synth is the subject here, not the engine: the test is not repeated on the second engine.)"""
    tables_ensure()
    stacked = _tables(synth.template)
    models = all_tables()
    assert sorted(stacked) == sorted(m.Meta.table_name.removeprefix(settings.DYNAMODB_TABLE_PREFIX) for m in models)
    for model in models:
        name = model.Meta.table_name
        real = client(model).describe_table(TableName=name)["Table"]
        ttl = client(model).describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        ours = stacked[name.removeprefix(settings.DYNAMODB_TABLE_PREFIX)]
        assert _key_schema(ours["KeySchema"]) == _key_schema(real["KeySchema"]), name
        assert sorted(map(str, ours["AttributeDefinitions"])) == sorted(map(str, real["AttributeDefinitions"])), name
        assert {
            i["IndexName"]: (_key_schema(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in ours.get("GlobalSecondaryIndexes", [])
        } == {
            i["IndexName"]: (_key_schema(i["KeySchema"]), i["Projection"]["ProjectionType"])
            for i in real.get("GlobalSecondaryIndexes", [])
        }, name
        assert ours.get("StreamSpecification", {}).get("StreamViewType") == (
            real.get("StreamSpecification", {}).get("StreamViewType")
        ), name
        assert ours.get("TimeToLiveSpecification", {}).get("AttributeName") == ttl.get("AttributeName"), name
        assert ours["BillingMode"] == "PAY_PER_REQUEST"
        assert all(
            r["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] for r in ours["Replicas"]
        ), name


def test_a_new_model_becomes_a_table_with_no_infra_edit() -> None:
    class History(Model):
        Meta = table_meta("history", stream_view_type=STREAM_KEYS_ONLY)
        pk = UnicodeAttribute(hash_key=True)
        at = NumberAttribute(range_key=True)
        expires_at = TTLAttribute()

        class ByAt(GlobalSecondaryIndex):
            class Meta:
                index_name = "by-at"
                projection = KeysOnlyProjection()

            at = NumberAttribute(hash_key=True)

        by_at = ByAt()

    spec = table_spec(History)
    assert (spec.name, spec.partition_key.name, spec.sort_key and spec.sort_key.type) == ("history", "pk", "N")
    assert [(i.name, i.partition_key.name, i.projection) for i in spec.global_indexes] == [("by-at", "at", "KEYS_ONLY")]
    assert (spec.stream_view_type, spec.ttl_attribute) == ("KEYS_ONLY", "expires_at")
    assert access.grants("migrate", [spec])[0].resources == ("table/history",)


def test_an_access_line_for_a_table_no_model_declares_is_refused() -> None:
    spec = table_spec(all_tables()[0])
    with pytest.raises(ValueError, match="no model declares"):
        access.grants("consumer", [spec])


@pytest.mark.parametrize("role", [*access.ROLES, "writeback-lambda"])
def test_each_role_has_exactly_its_reviewed_policy(synth: Synth, role: str) -> None:
    actual = policies.role_policies(synth.stack, synth.template)[role]
    assert actual == policies.expected(role), (
        f"{role}'s policy changed: review it, then `make infra-policies` writes infra/policies/{role}.json"
    )


def test_every_process_has_a_role_and_an_expected_file(synth: Synth) -> None:
    assert set(policies.role_policies(synth.stack, synth.template)) == {
        p.stem for p in policies.EXPECTED_DIR.glob("*.json")
    }


def test_cfn_lint_finds_nothing(synth: Synth) -> None:
    template = next(synth.outdir.glob("*.template.json"))
    result = subprocess.run(
        # W3005: the CDK writes a DependsOn beside the Ref that already orders two resources
        [str(Path(sys.executable).parent / "cfn-lint"), str(template), "--format", "parseable",
         "--ignore-checks", "W3005"],
        capture_output=True, text=True,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


CONCRETE = {
    "AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012",
    **{
        f"table:{t}.StreamArn": f"arn:aws:dynamodb:eu-west-1:123456789012:table/hybridsite-{t}/stream/2026-01-01"
        for t in ("carts", "drafts", "products", "category-listing", "category-tree", "orders", "heartbeat")
    },
    "queue:writeback-failures.Arn": "arn:aws:sqs:eu-west-1:123456789012:writeback-failures",
    **{f"secret:{s}": f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{s}-AbCdEf"
       for s in ("database", "redis-auth", "app")},
}


def test_parliament_finds_nothing_in_any_policy(synth: Synth) -> None:
    from parliament import analyze_policy_string

    found = {}
    for role, document in policies.role_policies(synth.stack, synth.template).items():
        statements = policies.concrete(document, CONCRETE)["Statement"]
        if not statements:
            continue
        policy = analyze_policy_string(json.dumps({"Version": "2012-10-17", "Statement": statements}))
        found[role] = [f"{f.issue}: {f.detail}" for f in policy.findings]
    assert found and all(not findings for findings in found.values()), found


def test_a_finding_not_acknowledged_fails_the_synth(tmp_path) -> None:
    """The packs are on: a queue that takes plain HTTP, with no reason given, stops the synth."""
    import aws_cdk as cdk
    from aws_cdk import aws_sqs as sqs

    from infra.nag import checked

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Unchecked")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED)
    checked(app, stack)
    with pytest.raises(RuntimeError, match="(?s)ValidationFailed: .*AwsSolutions-SQS2"):
        app.synth()


def test_global_table_replicas_and_a_retained_index_are_options(tmp_path) -> None:
    """(One synth for both: each costs seconds.) A retained index is kept beside its replacement for
    one deploy: CloudFormation cannot add one index and delete another in one update."""
    replicated = synthesize(
        tmp_path, region="eu-west-1", replicaRegions="us-east-1,ap-southeast-2", retainedIndexes="owner-index"
    )
    tables = _tables(replicated.template)
    assert {
        i["IndexName"]: i["Projection"]["ProjectionType"] for i in tables["products"]["GlobalSecondaryIndexes"]
    } == {"owner-keys-index": "KEYS_ONLY", "owner-index": "ALL"}
    assert "GlobalSecondaryIndexes" not in tables["history"]  # it never had an owner index
    assert {t: sorted(r["Region"] for r in p["Replicas"]) for t, p in tables.items()} == {
        t: ["ap-southeast-2", "eu-west-1", "us-east-1"] for t in tables
    }
    assert {p["StreamSpecification"]["StreamViewType"] for p in tables.values()} == {"NEW_AND_OLD_IMAGES"}
    resources = replicated.template["Resources"].values()
    alarms = [r["Properties"] for r in resources if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert sum(a.get("MetricName") == "ReplicationLatency" for a in alarms) == 2 * len(tables)
