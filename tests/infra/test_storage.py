"""storage.py: the key, the DynamoDB tables, the buckets, the topic and the dead-letter queue."""

import pytest
from aws_cdk.assertions import Template

from referrals.adapters.dynamodb.tables import (
    KEYS_ONLY_GSIS,
    MAIN_GSIS,
    RETIRED_GSIS,
    TTL_ATTRIBUTE,
    main_table,
    outbox_table,
)
from referrals.domain.reports import STAGED_PREFIX
from tests.infra.conftest import PREFIX, Json, arn, as_list, find, find_bucket, statements

# --- DynamoDB ------------------------------------------------------------------------


@pytest.mark.parametrize("definition", [main_table(PREFIX), outbox_table(PREFIX)])
def test_table_keys_and_indexes_are_the_store_design(template_json: Json, definition: Json) -> None:
    _, table = find(template_json, "AWS::DynamoDB::Table", TableName=definition["TableName"])
    props = table["Properties"]
    assert props["KeySchema"] == definition["KeySchema"]
    key = "AttributeName"
    assert sorted(props["AttributeDefinitions"], key=lambda a: a[key]) == sorted(
        definition["AttributeDefinitions"], key=lambda a: a[key]
    )
    by_name = "IndexName"
    assert sorted(props["GlobalSecondaryIndexes"], key=lambda i: i[by_name]) == sorted(
        definition["GlobalSecondaryIndexes"], key=lambda i: i[by_name]
    )
    assert all(
        i["Projection"]
        == {"ProjectionType": "KEYS_ONLY" if i["IndexName"] in KEYS_ONLY_GSIS else "ALL"}
        for i in props["GlobalSecondaryIndexes"]
    )
    assert props["BillingMode"] == "PAY_PER_REQUEST"


@pytest.mark.parametrize("name", [f"{PREFIX}-main", f"{PREFIX}-outbox"])
def test_tables_are_recoverable_encrypted_and_retained(template_json: Json, name: str) -> None:
    _, table = find(template_json, "AWS::DynamoDB::Table", TableName=name)
    props = table["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": arn(template_json, "AWS::KMS::Key"),
    }
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_the_main_table_deletes_expired_items(template_json: Json) -> None:
    # A client address's count of failed authentications, once its window has ended.
    _, main = find(template_json, "AWS::DynamoDB::Table", TableName=f"{PREFIX}-main")
    assert main["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": TTL_ATTRIBUTE,
        "Enabled": True,
    }


def test_only_the_outbox_streams_new_images(template_json: Json) -> None:
    _, outbox = find(template_json, "AWS::DynamoDB::Table", TableName=f"{PREFIX}-outbox")
    _, main = find(template_json, "AWS::DynamoDB::Table", TableName=f"{PREFIX}-main")
    assert outbox["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert "StreamSpecification" not in main["Properties"]


def test_the_key_rotates_and_is_retained(template: Template) -> None:
    template.has_resource(
        "AWS::KMS::Key",
        {
            "Properties": {"EnableKeyRotation": True},
            "DeletionPolicy": "Retain",
        },
    )
    template.has_resource_properties("AWS::KMS::Alias", {"AliasName": f"alias/{PREFIX}"})


# --- S3 ------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["reports", "logs"])
def test_buckets_are_private_versioned_encrypted_and_retained(
    template_json: Json, purpose: str
) -> None:
    _, bucket = find_bucket(template_json, purpose)
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("purpose", ["reports", "logs"])
def test_buckets_refuse_requests_without_tls(template_json: Json, purpose: str) -> None:
    bucket_id, _ = find_bucket(template_json, purpose)
    _, policy = find(template_json, "AWS::S3::BucketPolicy", Bucket={"Ref": bucket_id})
    assert {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Resource": [
            {"Fn::GetAtt": [bucket_id, "Arn"]},
            {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/*"]]},
        ],
    } in policy["Properties"]["PolicyDocument"]["Statement"]


def _lifecycle_rule(template_json: Json, rule_id: str) -> Json:
    _, bucket = find_bucket(template_json, "reports")
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {r["Id"] for r in rules} == {"archive-reports", "expire-staged-reports"}
    (rule,) = [r for r in rules if r["Id"] == rule_id]
    found: Json = rule
    return found


def test_reports_move_to_glacier_after_90_days(template_json: Json) -> None:
    rule = _lifecycle_rule(template_json, "archive-reports")
    assert rule["Status"] == "Enabled" and "Prefix" not in rule
    # Instant Retrieval: GET /v1/payouts/{period}/report keeps working on old reports.
    assert rule["Transitions"] == [
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 90},
    ]
    assert rule["NoncurrentVersionTransitions"] == [
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 90},
    ]


def test_staged_reports_and_their_old_versions_expire(template_json: Json) -> None:
    # Deleting a staged copy once published leaves an old version on the versioned
    # bucket: kept a day. A copy an attempt left without completing: kept a week.
    rule = _lifecycle_rule(template_json, "expire-staged-reports")
    assert rule["Status"] == "Enabled" and rule["Prefix"] == STAGED_PREFIX
    assert rule["ExpirationInDays"] == 7
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_report_access_is_logged_to_the_log_bucket(template_json: Json) -> None:
    logs_id, _ = find_bucket(template_json, "logs")
    _, reports = find_bucket(template_json, "reports")
    assert reports["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": logs_id},
        "LogFilePrefix": "reports/",
    }


# --- SNS, SQS ------------------------------------------------------------------------


def test_topic_is_encrypted_with_the_key(template: Template, template_json: Json) -> None:
    template.has_resource_properties(
        "AWS::SNS::Topic",
        {
            "TopicName": f"{PREFIX}-notifications",
            "DisplayName": "Referral Program Notifications",
            "KmsMasterKeyId": arn(template_json, "AWS::KMS::Key"),
        },
    )


def test_dead_letter_queue_is_encrypted_with_the_key(
    template: Template, template_json: Json
) -> None:
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": f"{PREFIX}-dead-letters",
            "KmsMasterKeyId": arn(template_json, "AWS::KMS::Key"),
            "MessageRetentionPeriod": 14 * 24 * 3600,
        },
    )


def test_cloudwatch_may_publish_alarms_to_the_encrypted_topic(template_json: Json) -> None:
    key_statements = [s for _, t, s in statements(template_json) if t == "AWS::KMS::Key"]
    assert any(
        s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(s["Action"]))
        for s in key_statements
    )
    topic_statements = [s for _, t, s in statements(template_json) if t == "AWS::SNS::TopicPolicy"]
    assert any(
        s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        for s in topic_statements
    )


def test_a_table_migrating_from_the_earlier_design_keeps_and_defers_indexes_by_name() -> None:
    # One step of infra/README.md's upgrade: the retired indexes kept, one new index built.
    from aws_cdk import App, Stack

    from infra.settings import StageSettings
    from infra.storage import Storage
    from tests.infra.conftest import cdk_context

    app = App(context=cdk_context(keep_indexes="by_referrer,by_referrer_id,unpaid"))
    settings = StageSettings.from_context(app.node)
    settings = StageSettings(
        keep_indexes=settings.keep_indexes, defer_indexes=("by_referrer_id_keys",)
    )
    stack = Stack(app, "Migrating")
    Storage(stack, "Storage", settings=settings)
    _, table = find(
        dict(Template.from_stack(stack).to_json()),
        "AWS::DynamoDB::Table",
        TableName=f"{settings.prefix}-main",
    )
    names = {i["IndexName"] for i in table["Properties"]["GlobalSecondaryIndexes"]}
    assert names == {*MAIN_GSIS, *RETIRED_GSIS} - {"by_referrer_id_keys"}


def test_an_unknown_index_to_keep_or_defer_stops_the_synth() -> None:
    from infra.settings import ContextError, StageSettings

    with pytest.raises(ContextError, match="no such index to keep or defer: by_referer"):
        StageSettings(keep_indexes=("by_referer",))
