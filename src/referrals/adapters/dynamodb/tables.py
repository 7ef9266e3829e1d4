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
negative for a clawback, the `by_period` keys) for the user it pays, plus `user_id`
and `entry_kind`, so payouts walk referrals and entries alike; its `referrer_pk` is
the user paid, which puts it in `by_referrer_id_keys` and `by_status` (lists of
referrals skip it) but not `by_referrer_keys` (no ordinal) nor `by_id` (no `kind`).

Indexes (sparse where noted: an item is in the index only while it has the key).
A write re-writes an item's copy in each index that projects an attribute it
changes (two writes when it changes the index's key): an index projects only what
its readers need, and one that projects keys only is written when the item enters
it and never again while its keys stay.

- `by_referrer_keys` (`referrer_pk`, `ordinal`), KEYS_ONLY: a referrer's referrals by
  ordinal; a page reads its items by key (BatchGetItem, strongly consistent).
- `by_referrer_id_keys` (`referrer_pk`, `id`), KEYS_ONLY: the same and the entries
  paid to the user, in id order, for filtered lists and earnings (read by key too).
- `by_id` (`kind`, `id`): every referral in id (creation) order; `get(id)` of a
  referral written before id claims (the claim is read first, consistently). Also a
  program's clicks of one UTC day (`kind` = `CLICKS#<program>#<day>`), by time.
  It projects everything: the dashboard's window reads its attributes from it.
- `by_status` (`status_pk`, `id`), sparse: referrals and entries of one status in id
  order, also how a payout finds the pending rewards payable before its cutoff
  (filtered on their payable time), so no index of its own is written for that. A
  reward a run assigns leaves it: it is paid with its run (run_states).
- `by_period` (`period_pk`, `period_sk` = `<user paid>#<id>`), sparse: the rewards
  and entries assigned to a run, by the user paid, so a run aggregates its lines in
  user order as it reads. Kept once paid, also by a reward clawed back later: a
  completed run's lines never change. A carried-forward item leaves it.
- `by_referee_email` (`email_key` = `<program>#<lowered email>`, `id`), sparse and KEYS_ONLY:
  the referral of a referee who signed up with an email, so a billing system's
  customer is matched by email (services/stripe_sync.py): 1 WCU per signup with an
  email, written when the referral is and never rewritten (its keys never change).

Indexes of the earlier design (`RETIRED_GSIS`: `by_referrer` and `by_referrer_id`,
which projected every attribute and so were re-written on each state change, and
`unpaid`) are no longer read: a table made before keeps working while they exist
(a query of a new index not yet created or still backfilling reads its retired
twin, which has the same keys), and infra/README.md says how they are replaced.

Outbox table (`id`), with a stream of new items for the notify function, a
sparse index `due` (`due_pk`, `due_at`) of the events waiting for delivery, and
`by_status` (`status`, `id`) to list events (dead letters) newest first.

The tables are created by the CDK stack on AWS, or by `referrals db upgrade`
elsewhere; `table_differences` is how an existing table is checked against
these definitions, in what the store relies on: its keys and indexes.
"""

from collections.abc import Collection
from typing import Any

from referrals.config import ConfigError

MAIN_GSIS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    # index name: ((partition key, type), (sort key, type))
    "by_referrer_keys": (("referrer_pk", "S"), ("ordinal", "N")),
    "by_referrer_id_keys": (("referrer_pk", "S"), ("id", "S")),
    "by_id": (("kind", "S"), ("id", "S")),
    "by_status": (("status_pk", "S"), ("id", "S")),
    "by_period": (("period_pk", "S"), ("period_sk", "S")),
    "by_referee_email": (("email_key", "S"), ("id", "S")),
}
# Indexes whose readers need only the keys (then read the items): written once, when the
# item is, and never again while its keys stay.
KEYS_ONLY_GSIS = frozenset({"by_referrer_keys", "by_referrer_id_keys", "by_referee_email"})
# The earlier design's indexes (all projecting ALL), and the index of this design with the
# same keys that replaces each: a table made before may still have them while it migrates.
RETIRED_GSIS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "by_referrer": (("referrer_pk", "S"), ("ordinal", "N")),
    "by_referrer_id": (("referrer_pk", "S"), ("id", "S")),
    "unpaid": (("unpaid_pk", "S"), ("unpaid_sk", "S")),
}
REPLACED_BY = {"by_referrer_keys": "by_referrer", "by_referrer_id_keys": "by_referrer_id"}
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
            _index(index, pk, sk) for index, ((pk, _), (sk, _)) in gsis.items()
        ],
    }


def _index(name: str, pk: str, sk: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": pk, "KeyType": "HASH"},
            {"AttributeName": sk, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY" if name in KEYS_ONLY_GSIS else "ALL"},
    }


def main_table(
    prefix: str, *, keep: Collection[str] = (), defer: Collection[str] = ()
) -> dict[str, Any]:
    """CreateTable arguments of the main table.

    For a deployed table that migrates from the earlier design one index at a time
    (DynamoDB creates or deletes one index per update): `keep` names retired indexes
    still defined, `defer` indexes of this design not created yet.
    """
    unknown = sorted({*keep} - RETIRED_GSIS.keys()) + sorted({*defer} - MAIN_GSIS.keys())
    if unknown:
        raise ValueError(f"no such index to keep or defer: {', '.join(unknown)}")
    gsis = {name: keys for name, keys in MAIN_GSIS.items() if name not in defer}
    gsis |= {name: RETIRED_GSIS[name] for name in RETIRED_GSIS if name in keep}
    return _definition(main_table_name(prefix), [("pk", "S", "HASH"), ("sk", "S", "RANGE")], gsis)


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
    they cost writes but break no query. Nor is an index missing whose retired twin
    (same keys, `REPLACED_BY`) is there: its queries read the twin meanwhile."""

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
        twin = indexes.get(REPLACED_BY.get(name, ""))
        if name not in indexes and twin is not None:
            twin_keys = _schema(twin["KeySchema"], have_types)
            if twin_keys == _schema(index["KeySchema"], want_types):
                continue
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

    With `create`, an index of the design that an existing table lacks is added (one at
    a time, as DynamoDB allows, each waited for until it has read the table's items);
    retired indexes are left for the operator to delete (infra/README.md), since
    servers of the earlier release may still read them. Without `create` nothing is
    written. boto3 takes the region from
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
        elif described is not None and create and _same_keys(definition, described):
            described = _add_indexes(client, definition, described)
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


def _same_keys(expected: dict[str, Any], described: dict[str, Any]) -> bool:
    """Whether a table has the keys of its definition: only then are indexes added to it
    (another table under the name is reported, not altered)."""
    differences = table_differences({**expected, "GlobalSecondaryIndexes": []}, described)
    return not differences


INDEX_WAIT_SECONDS = 900.0  # how long `db upgrade` waits for a new index to fill


def _add_indexes(
    client: Any, definition: dict[str, Any], described: dict[str, Any]
) -> dict[str, Any]:
    """Create the indexes of `definition` the table lacks, one UpdateTable each, waiting
    for each to be active (DynamoDB refuses a second while one is being built); the
    table as described after."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = definition["TableName"]
    types = {a["AttributeName"]: a for a in definition["AttributeDefinitions"]}
    for index in definition.get("GlobalSecondaryIndexes", []):
        have = {i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])}
        if index["IndexName"] in have:
            continue
        # Every attribute the table's keys use, the new index's too: a partial list
        # would be taken for the whole by some implementations (moto).
        attributes = {a["AttributeName"]: a for a in described["AttributeDefinitions"]}
        for key in index["KeySchema"]:
            attributes[key["AttributeName"]] = types[key["AttributeName"]]
        try:
            client.update_table(
                TableName=name,
                AttributeDefinitions=list(attributes.values()),
                GlobalSecondaryIndexUpdates=[{"Create": index}],
            )
        except (BotoCoreError, ClientError) as error:
            raise _unreadable(client, name, error, f"add index {index['IndexName']} to") from error
        described = _wait_for_index(client, name, index["IndexName"])
    return described


def _wait_for_index(client: Any, name: str, index: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + INDEX_WAIT_SECONDS
    while True:
        described = _describe(client, name) or {}
        status = {
            i["IndexName"]: i.get("IndexStatus", "ACTIVE")
            for i in described.get("GlobalSecondaryIndexes", [])
        }
        if status.get(index) == "ACTIVE":
            return described
        if time.monotonic() > deadline:
            raise DynamoSetupError(
                f"index {index} of DynamoDB table {name} is still being built "
                f"({status.get(index, 'not listed yet')}); the store reads its retired twin "
                "meanwhile: run `referrals db upgrade` again once it is ACTIVE"
            )
        time.sleep(5)


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
