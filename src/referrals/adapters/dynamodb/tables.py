"""The DynamoDB table design, in one place for the store, the tests and the CDK stack.

Main table (`pk`, `sk`), one item per fact, every access a GetItem or a Query:

| item | pk | sk | indexed as |
|---|---|---|---|
| referrer | `REFERRER#<user_id>` | `PROFILE` | |
| code claim (unique, case-insensitive) | `CODE#<CODE>` | `CODE` | |
| referral, also the referee claim | `REFEREE#<referee_id>` | `REFERRAL` | every index below |
| referral id claim (unique; `referee_id`: finds the referral) | `REFID#<id>` | `REFID` | |
| entry: referee reward, clawback | `REFERRAL#<referral_id>` | `REWARD#<id>` | see below |
| entry id claim (unique; finds the entry) | `REWARD#<id>` | `REWARD` | |
| conversion (once per external id) | `CONVERSION#<external_id>` | `CONVERSION` | |
| signup slot (conversion programs; see SignupSlot) | `SLOT#<user_id>` | `SLOT` | |
| payout run | `RUNS` | `<YYYY-MM>` | |
| API key (few: its look-up by id reads the partition) | `KEYS` | `<sha256>` | |
| API key id claim (unique) | `KEYID#<key id>` | `KEYID` | |
| dashboard session (the cookie names key and session) | `KEYID#<key id>` | `SESSION#<id>` | |
| audit entry (admin actions: rare, one partition) | `AUDIT` | `<entry id>` | |
| failed authentications of an address (`ttl`) | `LIMIT#<address>` | `FAILURES` | |
| secret the service keeps (if none is configured) | `SECRET#<name>` | `SECRET` | |
| program | `PROGRAM#<id>` | `PROGRAM` | |
| rule version (immutable; `rules`: compact JSON) | `PROGRAM#<id>` | `RULES#<version, 6 digits>` | |
| program listing (keys only; lists programs by id) | `PROGRAMS` | `<id>` | |
| click on a tracked link (see `clicks`) | `CLICK#<click id>` | `CLICK` | `by_id` |
| sale alias (another id of a sale: Stripe's payment of an invoice) | `ALIAS#<alias>` | `ALIAS` | |

An entry carries a referral's payout attributes (`status_pk`, `reward_cents`:
negative for a clawback, the `unpaid` and `by_period` keys) for the user it pays,
plus `user_id` and `entry_kind`, so payouts walk referrals and entries alike; its
`referrer_pk` is the user paid, which puts it in `by_referrer_id` and `by_status`
(lists of referrals skip it) but not `by_referrer` (no ordinal) nor `by_id` (no `kind`).

Indexes (sparse where noted: an item is in the index only while it has the key):

- `by_referrer` (`referrer_pk`, `ordinal`): a referrer's referrals by ordinal.
- `by_referrer_id` (`referrer_pk`, `id`): the same in id order, for filtered lists.
- `by_id` (`kind`, `id`): every referral in id (creation) order; `get(id)` of a
  referral written before id claims (the claim is read first, consistently). Also a
  program's clicks of one UTC day (`kind` = `CLICKS#<program>#<day>`), by time.
- `by_status` (`status_pk`, `id`): referrals of one status in id order.
- `unpaid` (`unpaid_pk`, `unpaid_sk`), sparse: pending rewards by the time they
  become payable (created_at + hold), so a payout finds the rewards payable
  before its cutoff with a Query, never a Scan. Held, rejected and reversed
  rewards are not in it; an approved one re-enters it.
- `by_period` (`period_pk`, `period_sk` = `<user paid>#<id>`), sparse: the rewards
  and entries assigned to a run, by the user paid, so a run aggregates its lines in
  user order as it reads. Kept once paid, also by a reward clawed back later: a
  completed run's lines never change. A carried-forward item leaves it.
- `by_referee_email` (`email_key` = `<program>#<lowered email>`, `id`), sparse and KEYS_ONLY:
  the referral of a referee who signed up with an email, so a billing system's
  customer is matched by email (services/stripe_sync.py): 1 WCU per signup with an
  email, written when the referral is and never rewritten (its keys never change).

Outbox table (`id`), with a stream of new items for the notify function, a
sparse index `due` (`due_pk`, `due_at`) of the events waiting for delivery, and
`by_status` (`status`, `id`) to list events (dead letters) newest first.

The tables are created by the CDK stack on AWS, or by `referrals db upgrade`
elsewhere; `table_differences` is how an existing table is checked against
these definitions, in what the store relies on: its keys and indexes.
"""

from typing import Any

from referrals.config import ConfigError

MAIN_GSIS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    # index name: ((partition key, type), (sort key, type))
    "by_referrer": (("referrer_pk", "S"), ("ordinal", "N")),
    "by_referrer_id": (("referrer_pk", "S"), ("id", "S")),
    "by_id": (("kind", "S"), ("id", "S")),
    "by_status": (("status_pk", "S"), ("id", "S")),
    "unpaid": (("unpaid_pk", "S"), ("unpaid_sk", "S")),
    "by_period": (("period_pk", "S"), ("period_sk", "S")),
    "by_referee_email": (("email_key", "S"), ("id", "S")),
}
# Indexes whose readers need only the keys (then read the item): written once, when the
# item is, and never again while its keys stay.
KEYS_ONLY_GSIS = frozenset({"by_referee_email"})
OUTBOX_GSIS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "due": (("due_pk", "S"), ("due_at", "N")),
    "by_status": (("status", "S"), ("id", "S")),
}


# Items that expire (a client address's failure count) carry it, in epoch seconds; the
# stack turns on Time to Live for it on the main table, so DynamoDB deletes them.
TTL_ATTRIBUTE = "ttl"


def main_table_name(prefix: str) -> str:
    return f"{prefix}-main"


def outbox_table_name(prefix: str) -> str:
    return f"{prefix}-outbox"


def _definition(
    name: str,
    keys: list[tuple[str, str, str]],
    gsis: dict[str, tuple[tuple[str, str], tuple[str, str]]],
) -> dict[str, Any]:
    attributes = {attr: kind for attr, kind, _ in keys}
    for (pk, pk_type), (sk, sk_type) in gsis.values():
        attributes[pk] = pk_type
        attributes[sk] = sk_type
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": a, "KeyType": role} for a, _, role in keys],
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": t} for a, t in sorted(attributes.items())
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY" if index in KEYS_ONLY_GSIS else "ALL"},
            }
            for index, ((pk, _), (sk, _)) in gsis.items()
        ],
    }


def main_table(prefix: str) -> dict[str, Any]:
    """CreateTable arguments of the main table."""
    return _definition(
        main_table_name(prefix), [("pk", "S", "HASH"), ("sk", "S", "RANGE")], MAIN_GSIS
    )


def outbox_table(prefix: str) -> dict[str, Any]:
    """CreateTable arguments of the outbox table; its stream feeds the notify function."""
    table = _definition(outbox_table_name(prefix), [("id", "S", "HASH")], OUTBOX_GSIS)
    table["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    return table


class DynamoSetupError(ConfigError):
    """The tables cannot be used as they are: missing, with other keys, or unreadable
    (no region, no credentials). The message is one line an operator can act on."""


def _schema(key_schema: list[dict[str, str]], types: dict[str, str]) -> str:
    # HASH sorts before RANGE: the partition key comes first, as DynamoDB lists it.
    ordered = sorted(key_schema, key=lambda k: k["KeyType"])
    return ", ".join(f"{k['AttributeName']} {types.get(k['AttributeName'], '?')}" for k in ordered)


def table_differences(expected: dict[str, Any], described: dict[str, Any]) -> list[str]:
    """How a table (DescribeTable's `Table`) differs from its CreateTable definition,
    in its keys and indexes. Indexes the definition does not name are not differences:
    they cost writes but break no query."""

    def types(table: dict[str, Any]) -> dict[str, str]:
        return {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}

    want_types, have_types = types(expected), types(described)
    found: list[str] = []
    want, have = (
        _schema(expected["KeySchema"], want_types),
        _schema(described["KeySchema"], have_types),
    )
    if want != have:
        found.append(f"its keys are ({have}), expected ({want})")
    indexes = {i["IndexName"]: i for i in described.get("GlobalSecondaryIndexes", [])}
    for index in expected.get("GlobalSecondaryIndexes", []):
        name = index["IndexName"]
        if name not in indexes:
            found.append(f"it has no index {name}")
            continue
        want = _schema(index["KeySchema"], want_types)
        have = _schema(indexes[name]["KeySchema"], have_types)
        if want != have:
            found.append(f"index {name} has keys ({have}), expected ({want})")
        want, have = (i["Projection"]["ProjectionType"] for i in (index, indexes[name]))
        if want != have:
            found.append(f"index {name} projects {have}, expected {want}")
    return found


def ensure_tables(client: Any, prefix: str, *, create: bool) -> None:
    """Check both tables against their definitions; with `create`, create those missing.

    Without `create` nothing is written. boto3 takes the region from
    AWS_DEFAULT_REGION or the AWS profile: a command pointed at the wrong region
    must stop there, not fill fresh tables (and hand out keys) that the deployed
    API never reads.
    """
    region = client.meta.region_name
    for definition in (main_table(prefix), outbox_table(prefix)):
        name = definition["TableName"]
        described = _describe(client, name)
        if described is None and create:
            _create(client, definition)
            described = _describe(client, name)
        if described is None:
            raise DynamoSetupError(
                f"DynamoDB table {name} does not exist in region {region} (the region comes "
                "from AWS_DEFAULT_REGION or the AWS profile; outside a deployed stack, "
                "`referrals db upgrade` creates the tables)"
            )
        if differences := table_differences(definition, described):
            raise DynamoSetupError(
                f"DynamoDB table {name} in region {region} is not the table referrals "
                f"expects: {'; '.join(differences)}"
            )
    if create:
        _expire_items(client, main_table(prefix)["TableName"])


def _expire_items(client: Any, name: str) -> None:
    """Turn on Time to Live for `TTL_ATTRIBUTE` on the main table, as the stack does:
    without it the items that expire (failure counts) would stay for good. Also on a
    table an earlier `db upgrade` made without it."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        described = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if described.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    except (BotoCoreError, ClientError) as error:
        raise _unreadable(client, name, error, "turn on Time to Live of") from error


def _create(client: Any, definition: dict[str, Any]) -> None:
    """Create a table and wait until it is active; one that another `db upgrade`
    created meanwhile is waited for the same way, then checked by the caller."""
    # botocore only here: the CDK app and the CLI import this module for its data.
    from botocore.exceptions import BotoCoreError, ClientError

    name = definition["TableName"]
    try:
        client.create_table(**definition)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise _unreadable(client, name, error, "create") from error
    except BotoCoreError as error:
        raise _unreadable(client, name, error, "create") from error
    try:
        client.get_waiter("table_exists").wait(TableName=name)
    except BotoCoreError as error:  # WaiterError: still not active after the waiter's time
        raise _unreadable(client, name, error, "create") from error


def _describe(client: Any, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        table: dict[str, Any] = client.describe_table(TableName=name)["Table"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise _unreadable(client, name, error) from error
    except BotoCoreError as error:  # no credentials, no endpoint
        raise _unreadable(client, name, error) from error
    return table


def _unreadable(client: Any, name: str, error: Exception, doing: str = "read") -> DynamoSetupError:
    region = client.meta.region_name
    return DynamoSetupError(f"cannot {doing} DynamoDB table {name} in region {region}: {error}")
