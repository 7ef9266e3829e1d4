"""WebhookNotifier against a real local HTTP receiver, and driven by the outbox dispatcher."""

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from referrals.adapters.memory import MemoryStore
from referrals.adapters.notify.webhook import (
    SIGNATURE_HEADER,
    WebhookNotifier,
    sign,
    signing_key,
    verify,
)
from referrals.bootstrap import build_notifier
from referrals.config import Settings
from referrals.domain.events import envelope
from referrals.domain.model import Event, EventStatus
from referrals.services.outbox import RetryPolicy, dispatch, requeue
from tests.clocks import FixedClock

SECRET = "whsec-test-0123456789-plain-text"  # a secret of text, as before whsec_ values
WHSEC = "whsec_" + base64.b64encode(bytes(range(32))).decode()
README = Path(__file__).resolve().parents[2] / "README.md"
SIGNATURE = re.compile(r"t=(\d+),v1=([0-9a-f]{64})")


@dataclass(frozen=True)
class Received:
    path: str
    headers: Message
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint that records requests and answers scripted statuses.

    The last status repeats once the script runs out.
    """

    statuses: list[int]
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, received: Received) -> int:
        with self.lock:
            self.requests.append(received)
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]

    def script(self, *statuses: int) -> None:
        with self.lock:
            self.statuses = list(statuses)

    def event_ids(self) -> list[str | None]:
        return [r.headers.get("Referrals-Event-Id") for r in self.requests]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.answer(Received(self.path, self.headers, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet

    return Handler


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(*statuses: int) -> Receiver:
        receiver = Receiver(list(statuses))
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        servers.append((server, thread))
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/referrals"
        return receiver

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # trust_env=False: a proxy set in the environment must not intercept 127.0.0.1.
    # One client for the module: building its TLS context is the slow part.
    with httpx.Client(timeout=5, trust_env=False) as client:
        yield client


@pytest.fixture
def notifier_for(http: httpx.Client, clock: FixedClock) -> Callable[[Receiver], WebhookNotifier]:
    # The notifier signs with the test clock's time, so signatures are deterministic.
    def make(receiver: Receiver) -> WebhookNotifier:
        return WebhookNotifier(receiver.url, SECRET, http, clock=lambda: clock.now().timestamp())

    return make


@pytest.fixture
def store(event: Event) -> MemoryStore:
    store = MemoryStore()
    with store.unit_of_work() as uow:
        uow.outbox.add(event)
        uow.commit()
    return store


def stored(store: MemoryStore, event_id: str) -> Event:
    with store.read() as uow:
        event = uow.outbox.get(event_id)
    assert event is not None
    return event


# --- one delivery: body, headers, signature ---------------------------------------------


def test_delivery_posts_the_envelope_as_json(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    event: Event,
) -> None:
    # Every notifier sends the same wire body; receivers parse exactly this.
    receiver = start_receiver(200)
    notifier_for(receiver).deliver(event)

    [request] = receiver.requests
    assert request.path == "/hooks/referrals"
    assert request.body == envelope(event)
    assert request.headers["Content-Type"] == "application/json"


def test_delivery_carries_the_event_id_and_a_timestamped_signature(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    event: Event,
    clock: FixedClock,
) -> None:
    # The id lets receivers dedupe (delivery is at least once); the timestamp lets
    # them refuse replays.
    receiver = start_receiver(200)
    notifier_for(receiver).deliver(event)

    [request] = receiver.requests
    assert request.headers["Referrals-Event-Id"] == event.id
    match = SIGNATURE.fullmatch(request.headers[SIGNATURE_HEADER])
    assert match is not None, request.headers[SIGNATURE_HEADER]
    assert int(match[1]) == int(clock.now().timestamp())


def test_receiver_verifies_the_signature_with_the_shared_secret(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    event: Event,
    clock: FixedClock,
) -> None:
    receiver = start_receiver(200)
    notifier_for(receiver).deliver(event)

    [request] = receiver.requests
    assert verify(SECRET, request.headers[SIGNATURE_HEADER], request.body, clock.now().timestamp())


def test_signature_does_not_verify_with_another_secret(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    event: Event,
    clock: FixedClock,
) -> None:
    receiver = start_receiver(200)
    notifier_for(receiver).deliver(event)

    [request] = receiver.requests
    now = clock.now().timestamp()
    assert not verify("not-the-secret", request.headers[SIGNATURE_HEADER], request.body, now)


def test_signature_does_not_verify_a_tampered_body(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    event: Event,
    clock: FixedClock,
) -> None:
    # Someone in the middle raising the reward must be caught.
    receiver = start_receiver(200)
    notifier_for(receiver).deliver(event)

    [request] = receiver.requests
    tampered = request.body.replace(b'"reward_cents":1500', b'"reward_cents":9900')
    assert tampered != request.body
    now = clock.now().timestamp()
    assert not verify(SECRET, request.headers[SIGNATURE_HEADER], tampered, now)


def test_signature_cannot_be_moved_to_another_timestamp() -> None:
    # The timestamp is inside the MAC: a replayer cannot refresh an old signature's t=.
    body = b'{"id":"x"}'
    _, mac = sign(SECRET, 1_000, body).split(",")
    assert not verify(SECRET, f"t=2000,{mac}", body, now=2_000)


@pytest.mark.parametrize(
    ("age", "accepted"),
    [
        (0, True),
        (300, True),  # the edge of the default 5-minute tolerance
        (301, False),  # a replay of an old request
        (-301, False),  # a timestamp from the future is no better
    ],
)
def test_signature_is_only_accepted_within_the_tolerance(age: int, accepted: bool) -> None:
    body = b'{"id":"01J"}'
    signed_at = 1_773_489_600
    header = sign(SECRET, signed_at, body)
    assert verify(SECRET, header, body, now=signed_at + age) is accepted


@pytest.mark.parametrize(
    "header",
    ["", "garbage", "t=,v1=00", "t=abc,v1=00", "v1=00", "t=1773489600", "t=-5,v1=00"],
)
def test_malformed_signature_header_is_refused(header: str) -> None:
    assert verify(SECRET, header, b"{}", now=1_773_489_600) is False


@pytest.mark.parametrize("header", ["t=\u00b2,v1=00", "t=\u0661\u0662,v1=00", "t=0,v1=\u00e9"])
def test_verify_returns_false_on_a_non_ascii_header(header: str) -> None:
    # A receiver feeds verify() an attacker-controlled header: it must say False,
    # never raise (ValueError from int('²'), TypeError from compare_digest on non-ASCII).
    assert verify(SECRET, header, b"{}", now=0) is False


@pytest.mark.parametrize("status", [302, 400, 404, 500, 503])
def test_a_non_2xx_answer_raises_so_the_outbox_retries(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    event: Event,
    status: int,
) -> None:
    # A redirect is a failure too: following it would send the signed body elsewhere.
    receiver = start_receiver(status)
    with pytest.raises(httpx.HTTPStatusError):
        notifier_for(receiver).deliver(event)
    assert len(receiver.requests) == 1


def test_an_unreachable_receiver_raises(
    http: httpx.Client, clock: FixedClock, event: Event
) -> None:
    # Nothing listens on the port: the error must surface, not be swallowed.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = WebhookNotifier(f"http://127.0.0.1:{port}/hooks", SECRET, http)
    with pytest.raises(httpx.TransportError):
        notifier.deliver(event)


# --- Standard Webhooks: verified by the standardwebhooks package itself ------------------


@pytest.fixture
def signed_now(http: httpx.Client) -> Callable[..., WebhookNotifier]:
    # Webhook.verify compares the timestamp with the wall clock: sign with it too.
    def make(receiver: Receiver, secret: str | None = WHSEC) -> WebhookNotifier:
        return WebhookNotifier(receiver.url, secret, http)

    return make


def headers_of(request: Received) -> dict[str, str]:
    return dict(request.headers.items())


def test_a_delivery_verifies_with_the_standardwebhooks_package(
    start_receiver: Callable[..., Receiver],
    signed_now: Callable[..., WebhookNotifier],
    event: Event,
) -> None:
    receiver = start_receiver(200)
    signed_now(receiver).deliver(event)

    [request] = receiver.requests
    assert Webhook(WHSEC).verify(request.body, headers_of(request)) == json.loads(envelope(event))
    assert request.headers["webhook-id"] == event.id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60


def test_a_plain_text_secret_signs_with_its_utf8_bytes(
    start_receiver: Callable[..., Receiver],
    signed_now: Callable[..., WebhookNotifier],
    event: Event,
) -> None:
    # A secret set before the Standard Webhooks headers keeps working for both headers.
    receiver = start_receiver(200)
    signed_now(receiver, SECRET).deliver(event)

    [request] = receiver.requests
    assert Webhook(SECRET.encode()).verify(request.body, headers_of(request))
    assert verify(SECRET, request.headers[SIGNATURE_HEADER], request.body, time.time())


def test_a_whsec_secret_keys_the_earlier_header_too(
    start_receiver: Callable[..., Receiver],
    signed_now: Callable[..., WebhookNotifier],
    event: Event,
) -> None:
    receiver = start_receiver(200)
    signed_now(receiver).deliver(event)

    [request] = receiver.requests
    assert verify(WHSEC, request.headers[SIGNATURE_HEADER], request.body, time.time())
    assert not verify(SECRET, request.headers[SIGNATURE_HEADER], request.body, time.time())


@pytest.mark.parametrize(
    ("secret", "tamper"),
    [
        ("whsec_" + base64.b64encode(b"another key of 32 bytes, really!").decode(), False),
        (WHSEC, True),
    ],
    ids=["another secret", "a tampered body"],
)
def test_the_standard_signature_refuses_another_secret_or_body(
    start_receiver: Callable[..., Receiver],
    signed_now: Callable[..., WebhookNotifier],
    event: Event,
    secret: str,
    tamper: bool,
) -> None:
    receiver = start_receiver(200)
    signed_now(receiver).deliver(event)

    [request] = receiver.requests
    body = request.body.replace(b'"reward_cents":1500', b'"reward_cents":9900')
    assert body != request.body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body if tamper else request.body, headers_of(request))


def test_an_old_standard_signature_is_refused(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    event: Event,
) -> None:
    # Signed at the test clock's time, months ago: a replay.
    receiver = start_receiver(200)
    notifier_for(receiver).deliver(event)

    [request] = receiver.requests
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET.encode()).verify(request.body, headers_of(request))


def test_an_unsigned_notifier_sends_the_id_but_no_signature(
    start_receiver: Callable[..., Receiver],
    signed_now: Callable[..., WebhookNotifier],
    event: Event,
) -> None:
    # Only when the settings say `unsigned` explicitly.
    receiver = start_receiver(200)
    signed_now(receiver, None).deliver(event)

    [request] = receiver.requests
    assert request.headers["webhook-id"] == event.id
    assert request.headers["webhook-signature"] is None
    assert request.headers[SIGNATURE_HEADER] is None


@pytest.mark.parametrize("unsigned", [False, True], ids=["signed", "unsigned"])
def test_the_notifier_built_from_the_settings_signs_unless_told_not_to(
    start_receiver: Callable[..., Receiver], event: Event, unsigned: bool
) -> None:
    receiver = start_receiver(200)
    secret = "" if unsigned else WHSEC
    settings = Settings(notify_url=receiver.url, webhook_secret=secret, webhook_unsigned=unsigned)
    notifier = build_notifier(settings)
    assert isinstance(notifier, WebhookNotifier)
    notifier.client.close()
    notifier.client = httpx.Client(timeout=5, trust_env=False)  # no proxy for 127.0.0.1
    notifier.deliver(event)
    notifier.client.close()

    [request] = receiver.requests
    if unsigned:
        assert request.headers["webhook-signature"] is None
    else:
        assert Webhook(WHSEC).verify(request.body, headers_of(request))


def test_an_empty_secret_is_refused_not_used_as_a_key(http: httpx.Client) -> None:
    with pytest.raises(ValueError, match="empty webhook secret"):
        WebhookNotifier("http://127.0.0.1:9/hooks", "", http)


def test_the_signing_key_of_a_whsec_secret_is_its_base64_payload() -> None:
    assert signing_key(WHSEC) == bytes(range(32))
    assert signing_key(WHSEC.rstrip("=")) == bytes(range(32))  # unpadded, as some tools print
    assert signing_key("plain text") == b"plain text"


def readme_snippet() -> str:
    """The README's Python block that verifies a delivery."""
    blocks = re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.MULTILINE | re.DOTALL)
    [snippet] = [str(b) for b in blocks if "from standardwebhooks import Webhook" in b]
    return snippet


@pytest.mark.parametrize("secret", [WHSEC, SECRET], ids=["whsec", "plain text"])
def test_the_readme_snippet_verifies_a_delivery(
    start_receiver: Callable[..., Receiver],
    signed_now: Callable[..., WebhookNotifier],
    event: Event,
    monkeypatch: pytest.MonkeyPatch,
    secret: str,
) -> None:
    receiver = start_receiver(200)
    signed_now(receiver, secret).deliver(event)
    monkeypatch.setenv("REFERRALS_WEBHOOK_SECRET", secret)
    namespace: dict[str, object] = {}
    exec(compile(readme_snippet(), str(README), "exec"), namespace)
    verified_event = namespace["verified_event"]
    assert callable(verified_event)

    [request] = receiver.requests
    assert verified_event(request.body, headers_of(request)) == json.loads(envelope(event))
    with pytest.raises(WebhookVerificationError):
        verified_event(request.body + b" ", headers_of(request))


# --- through the outbox: retries, backoff, dead letter, requeue ---------------------------

POLICY = RetryPolicy(max_attempts=3, first_delay=timedelta(seconds=1))


def test_dispatch_retries_until_delivered_with_the_same_event_id(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    store: MemoryStore,
    clock: FixedClock,
    event: Event,
) -> None:
    # Two failures then success: delivered on the third attempt, and every attempt
    # carries the same id so the receiver can dedupe.
    receiver = start_receiver(500, 500, 200)
    notifier = notifier_for(receiver)
    policy = RetryPolicy(max_attempts=5, first_delay=timedelta(seconds=1))

    results = []
    for _ in range(3):
        results.append(dispatch(store, notifier, clock, policy))
        clock.advance(seconds=10)  # past any backoff so far (1 s, then 2 s)

    assert [(r.delivered, r.failed) for r in results] == [(0, 1), (0, 1), (1, 0)]
    delivered = stored(store, event.id)
    assert delivered.status is EventStatus.DELIVERED
    assert delivered.attempts == 3
    assert receiver.event_ids() == [event.id] * 3
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.id] * 3
    assert {r.body for r in receiver.requests} == {envelope(event)}


def test_backoff_doubles_after_each_failure(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    store: MemoryStore,
    clock: FixedClock,
    event: Event,
) -> None:
    notifier = notifier_for(start_receiver(500))
    policy = RetryPolicy(max_attempts=5, first_delay=timedelta(seconds=3))

    dispatch(store, notifier, clock, policy)
    assert stored(store, event.id).next_attempt_at == clock.now() + timedelta(seconds=3)

    clock.advance(seconds=3)
    dispatch(store, notifier, clock, policy)
    assert stored(store, event.id).next_attempt_at == clock.now() + timedelta(seconds=6)


def test_no_retry_before_the_backoff_has_passed(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    store: MemoryStore,
    clock: FixedClock,
) -> None:
    # Hammering a failing receiver on every dispatch tick would defeat the backoff.
    receiver = start_receiver(500)
    notifier = notifier_for(receiver)

    dispatch(store, notifier, clock, POLICY)
    clock.advance(seconds=0.5)  # first_delay is 1 s
    result = dispatch(store, notifier, clock, POLICY)

    assert (result.delivered, result.failed) == (0, 0)
    assert len(receiver.requests) == 1


def _exhaust_retries(
    store: MemoryStore, notifier: WebhookNotifier, clock: FixedClock, rounds: int = 6
) -> None:
    for _ in range(rounds):
        dispatch(store, notifier, clock, POLICY)
        clock.advance(minutes=1)  # past any backoff POLICY can produce


def test_event_is_dead_lettered_after_max_attempts(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    store: MemoryStore,
    clock: FixedClock,
    event: Event,
) -> None:
    receiver = start_receiver(503)

    _exhaust_retries(store, notifier_for(receiver), clock)

    dead = stored(store, event.id)
    assert dead.status is EventStatus.DEAD
    assert dead.attempts == 3
    assert dead.last_error is not None and "503" in dead.last_error
    assert receiver.event_ids() == [event.id] * 3  # exactly max_attempts, no more


def test_a_dead_event_is_not_sent_again(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    store: MemoryStore,
    clock: FixedClock,
    event: Event,
) -> None:
    receiver = start_receiver(503)
    notifier = notifier_for(receiver)
    _exhaust_retries(store, notifier, clock)
    receiver.script(200)  # even once the receiver is healthy again

    clock.advance(days=1)
    result = dispatch(store, notifier, clock, POLICY)

    assert (result.delivered, result.failed) == (0, 0)
    assert len(receiver.requests) == 3
    assert stored(store, event.id).status is EventStatus.DEAD


def test_a_requeued_dead_event_is_delivered(
    start_receiver: Callable[..., Receiver],
    notifier_for: Callable[[Receiver], WebhookNotifier],
    store: MemoryStore,
    clock: FixedClock,
    event: Event,
) -> None:
    # The admin's way out after fixing the receiver: the same event, the same id.
    receiver = start_receiver(503)
    notifier = notifier_for(receiver)
    _exhaust_retries(store, notifier, clock)
    receiver.script(200)

    requeued = requeue(store, clock, event.id)
    assert requeued.status is EventStatus.PENDING
    result = dispatch(store, notifier, clock, POLICY)

    assert result.delivered == 1
    delivered = stored(store, event.id)
    assert delivered.status is EventStatus.DELIVERED
    assert delivered.attempts == 1  # requeue grants a fresh retry budget
    assert delivered.last_error is None
    assert receiver.event_ids() == [event.id] * 4
    assert receiver.requests[-1].body == envelope(event)
