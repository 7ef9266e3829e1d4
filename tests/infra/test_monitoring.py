"""monitoring.py: the dashboard's metrics and the alarms that notify the topic."""

import json

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import FUNCTIONS, PREFIX, Json, find, ref, render, resources


def _dashboard_metrics(template_json: Json) -> set[tuple[str, str, frozenset[tuple[str, str]]]]:
    _, dashboard = find(template_json, "AWS::CloudWatch::Dashboard", DashboardName=PREFIX)
    body = json.loads(render(dashboard["Properties"]["DashboardBody"], template_json))
    found = set()
    for widget in body["widgets"]:
        for metric in widget.get("properties", {}).get("metrics", []):
            names = [m for m in metric if isinstance(m, str)]
            if len(names) >= 2:
                namespace, metric_name, *dimensions = names
                pairs = frozenset(zip(dimensions[::2], dimensions[1::2], strict=True))
                found.add((namespace, metric_name, pairs))
    return found


def test_dashboard_shows_each_function(template_json: Json) -> None:
    metrics = _dashboard_metrics(template_json)
    for short in FUNCTIONS:
        for name in ("Invocations", "Errors", "Duration", "Throttles"):
            dims = frozenset({("FunctionName", f"{PREFIX}-{short}")})
            assert ("AWS/Lambda", name, dims) in metrics, (short, name)


def test_dashboard_shows_each_table(template_json: Json) -> None:
    metrics = _dashboard_metrics(template_json)
    for table in (f"{PREFIX}-main", f"{PREFIX}-outbox"):
        for name in (
            "ConsumedReadCapacityUnits",
            "ConsumedWriteCapacityUnits",
            "ReadThrottleEvents",
            "WriteThrottleEvents",
        ):
            assert ("AWS/DynamoDB", name, frozenset({("TableName", table)})) in metrics


def test_dashboard_shows_the_api_stage(template_json: Json) -> None:
    metrics = _dashboard_metrics(template_json)
    dims = frozenset({("ApiName", f"{PREFIX}-api"), ("Stage", "prod")})
    for name in ("4XXError", "5XXError", "Latency", "Count"):
        assert ("AWS/ApiGateway", name, dims) in metrics, name


def test_dashboard_shows_the_business_metrics(template_json: Json) -> None:
    metrics = _dashboard_metrics(template_json)
    for name in ("Signups", "PayoutsCompleted"):
        assert ("Referrals", name, frozenset({("service", "referrals")})) in metrics


def test_dashboard_shows_rewards_and_payouts_per_currency(template_json: Json) -> None:
    """`RewardCents`, `ShareCents` and `PayoutCents` have a `Currency` dimension: a search
    finds a line per currency."""
    _, dashboard = find(template_json, "AWS::CloudWatch::Dashboard", DashboardName=PREFIX)
    body = json.loads(render(dashboard["Properties"]["DashboardBody"], template_json))
    expressions = [
        metric[0]["expression"]
        for widget in body["widgets"]
        for metric in widget.get("properties", {}).get("metrics", [])
        if isinstance(metric[0], dict) and "expression" in metric[0]
    ]
    assert expressions == [
        f"""SEARCH('{{Referrals,Currency,service}} MetricName="{name}"', 'Sum', 300)"""
        for name in ("RewardCents", "ShareCents", "PayoutCents")
    ]


def test_every_alarm_notifies_the_topic(template_json: Json) -> None:
    alarms = resources(template_json, "AWS::CloudWatch::Alarm")
    topic = ref(template_json, "AWS::SNS::Topic")
    assert {a["Properties"]["AlarmName"] for a in alarms.values()} == {
        f"{PREFIX}-api-errors",
        f"{PREFIX}-payout-errors",
        f"{PREFIX}-notify-errors",
        f"{PREFIX}-api-5xx",
        f"{PREFIX}-payout-failed",
        f"{PREFIX}-schedule-failed",
        f"{PREFIX}-dead-letters",
    }
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [topic]


@pytest.mark.parametrize("short", FUNCTIONS)
def test_function_errors_alarm(template: Template, template_json: Json, short: str) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{PREFIX}-{short}-errors",
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [
                {
                    "Name": "FunctionName",
                    "Value": ref(
                        template_json, "AWS::Lambda::Function", FunctionName=f"{PREFIX}-{short}"
                    ),
                }
            ],
        },
    )


def test_api_5xx_and_failed_payout_alarms(template: Template, template_json: Json) -> None:
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{PREFIX}-api-5xx",
            "MetricName": "5XXError",
            "Dimensions": Match.array_with([{"Name": "ApiName", "Value": f"{PREFIX}-api"}]),
        },
    )
    _, alarm = find(template_json, "AWS::CloudWatch::Alarm", AlarmName=f"{PREFIX}-payout-failed")
    names = {
        m.get("MetricStat", {}).get("Metric", {}).get("MetricName")
        for m in alarm["Properties"]["Metrics"]
    }
    assert {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"} <= names
