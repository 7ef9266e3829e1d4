"""What the API keeps of an IP address or device id: a keyed fingerprint, not a plain hash."""

import hashlib
import ipaddress

from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services, build
from referrals.derived_keys import FINGERPRINT, secret_for
from referrals.domain.checks import KEYED, fingerprint, unkeyed_fingerprint
from referrals.domain.model import Referrer
from referrals.services.kept_secret import SECRET_KEY
from tests.api.common import Headers, signup


def kept(services: Services, user_id: str) -> Referrer:
    with services.store.read() as uow:
        referrer = uow.referrers.get(user_id)
    assert referrer is not None
    return referrer


def test_the_stored_fingerprint_is_keyed_by_the_services_secret(
    client: TestClient, services: Services, ingest: Headers
) -> None:
    body = {"user_id": "dave", "ip": "192.0.2.1", "device_id": "daves-phone"}
    assert client.post("/v1/referrers", json=body, headers=ingest).status_code == 201
    dave = kept(services, "dave")
    assert dave.ip_hash is not None and dave.ip_hash.startswith(KEYED)
    digest = hashlib.sha256(b"192.0.2.1").hexdigest()
    assert dave.ip_hash.removeprefix(KEYED) not in (digest, digest[:32])
    key = secret_for(services.settings, FINGERPRINT)
    assert (dave.ip_hash, dave.device_hash) == (
        fingerprint(key, "192.0.2.1"),
        fingerprint(key, "daves-phone"),
    )
    # Under another secret the same address is another fingerprint.
    other = services.settings.model_copy(update={"secret_key": "another-" + "s" * 32})
    assert dave.ip_hash != fingerprint(secret_for(other, FINGERPRINT), "192.0.2.1")
    # Nothing the brute force of an address range could find, without the key.
    found = [
        str(ip)
        for ip in ipaddress.ip_network("192.0.2.0/24")
        if unkeyed_fingerprint(str(ip)) in (dave.ip_hash, dave.ip_hash.removeprefix(KEYED))
    ]
    assert found == []


def test_without_a_configured_secret_the_key_comes_from_the_kept_one(
    services: Services,
) -> None:
    # The API tests' services configure no secret: build() kept one in the database.
    with services.store.read() as uow:
        assert uow.secrets.get(SECRET_KEY) == services.settings.secret_key
    assert len(services.settings.secret_key) >= 43


def test_a_server_built_again_keys_the_same_address_the_same_way(
    client: TestClient, services: Services, ingest: Headers
) -> None:
    enrolled = client.post(
        "/v1/referrers", json={"user_id": "dave", "ip": "2001:db8::1"}, headers=ingest
    )
    code = enrolled.json()["code"]
    # Another process on the same database (a restart, another worker).
    again = build(services.settings.model_copy(update={"secret_key": ""}))
    try:
        assert again.settings.secret_key == services.settings.secret_key
        with TestClient(create_app(again)) as other:
            held = signup(other, ingest, "erin", code, ip="2001:db8::1")
            passed = signup(other, ingest, "frank", code, ip="2001:db8::2")
        assert (held["status"], passed["status"]) == ("held", "pending")
    finally:
        again.store.dispose()


def test_a_referrer_fingerprinted_before_the_upgrade_is_still_compared(
    client: TestClient, services: Services, ingest: Headers
) -> None:
    """Rows written before fingerprints were keyed hold sha256(value)[:32]: they cannot
    be re-keyed, so a signup is compared with them in that form too."""
    old = Referrer(
        "olga",
        "OLGA-1",
        None,
        0,
        services.clock.now(),
        ip_hash=hashlib.sha256(b"198.51.100.7").hexdigest()[:32],
        device_hash=hashlib.sha256(b"olgas-phone").hexdigest()[:32],
    )
    with services.store.unit_of_work() as uow:
        uow.referrers.add(old)
        uow.commit()
    same_ip = signup(client, ingest, "erin", "OLGA-1", ip="198.51.100.7")
    same_device = signup(client, ingest, "frank", "OLGA-1", device_id="olgas-phone")
    other = signup(client, ingest, "gina", "OLGA-1", ip="198.51.100.8", device_id="ginas")
    assert [r["status"] for r in (same_ip, same_device, other)] == ["held", "held", "pending"]
    # The referee enrolled by the signup keeps the keyed form only.
    erin = kept(services, "erin")
    assert erin.ip_hash is not None and erin.ip_hash.startswith(KEYED)
