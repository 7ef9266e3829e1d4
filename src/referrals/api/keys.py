"""API keys over HTTP (admin only): list, create, revoke, rotate; each change audited
with the acting key's id, as the CLI's are with `cli`."""

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request, status
from pydantic import BaseModel, Field, StringConstraints

from referrals.api import auth
from referrals.api.deps import PROBLEMS, ServicesDep
from referrals.api.schemas.common import VISIBLE_TEXT, RequestBody, WholeNumber
from referrals.api.schemas.reviews import Decision
from referrals.domain.model import ApiKey, KeyState, Role
from referrals.services import keys
from referrals.services.keys import MAX_GRACE, MAX_LIFETIME, MAX_NAME, MIN_LIFETIME

router = APIRouter(tags=["keys"])
# ULIDs, and the first admin key's fixed id.
KeyId = Annotated[str, Path(pattern=r"^([0-9A-Z]{26}|first-admin)$")]
KeyName = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_NAME, pattern=VISIBLE_TEXT),
]
ExpiresIn = Annotated[
    int,
    Field(
        strict=True,
        ge=int(MIN_LIFETIME.total_seconds()),
        le=int(MAX_LIFETIME.total_seconds()),
        description="The key stops working this many seconds from now.",
    ),
    WholeNumber,
]
CHANGES = PROBLEMS | {404: {"description": "not_found"}}


class KeyCreate(RequestBody):
    role: Role
    name: KeyName | None = Field(None, description="What the key is for, to tell keys apart")
    expires_in_seconds: ExpiresIn | None = None


class KeyRotate(RequestBody):
    grace_seconds: Annotated[int, WholeNumber] = Field(
        int(keys.DEFAULT_GRACE.total_seconds()),
        strict=True,
        ge=0,
        le=int(MAX_GRACE.total_seconds()),
        description="How long the old key keeps working (0: not at all).",
    )
    expires_in_seconds: ExpiresIn | None = Field(None, description="The new key's expiry.")


class KeyOut(BaseModel):
    id: str
    name: str | None
    role: Role
    state: KeyState
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(description="To the minute")

    @classmethod
    def of(cls, key: ApiKey, now: datetime) -> "KeyOut":
        return cls(
            id=key.id,
            name=key.name,
            role=key.role,
            state=key.state(now),
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
        )


class KeyList(BaseModel):
    items: list[KeyOut]


class NewKey(KeyOut):
    key: str = Field(description="The secret: shown this once, stored only as a hash")


class RotatedKey(NewKey):
    replaces: KeyOut = Field(description="The old key, working until its expires_at")


@router.get("/v1/keys", response_model=KeyList, responses=PROBLEMS)
def list_keys(svc: ServicesDep, _: ApiKey = Depends(auth.admin)) -> KeyList:
    """Every key, oldest first, revoked and expired ones too; never a secret."""
    now = svc.clock.now()
    return KeyList(items=[KeyOut.of(key, now) for key in keys.list_keys(svc.store)])


@router.post(
    "/v1/keys", response_model=NewKey, status_code=status.HTTP_201_CREATED, responses=PROBLEMS
)
def create_key(body: KeyCreate, svc: ServicesDep, actor: ApiKey = Depends(auth.admin)) -> NewKey:
    """A new key; its secret is in this answer only."""
    expires_in = _seconds(body.expires_in_seconds)
    plaintext, key = keys.create_key(
        svc.store, svc.clock, body.role, actor.id, name=body.name, expires_in=expires_in
    )
    return NewKey(**KeyOut.of(key, svc.clock.now()).model_dump(), key=plaintext)


@router.post("/v1/keys/{key_id}/revoke", response_model=KeyOut, responses=CHANGES)
def revoke_key(
    key_id: KeyId,
    request: Request,
    svc: ServicesDep,
    actor: ApiKey = Depends(auth.admin),
    body: Annotated[Decision | None, Body()] = None,
) -> KeyOut:
    """Revoke a key at once, on every server within a second, and end its dashboard
    sessions; revoking a revoked key changes nothing. The body and its reason are
    optional."""
    reason = body.reason if body is not None else None
    key = keys.revoke_key(svc.store, svc.clock, key_id, actor.id, reason)
    _forget_keys(request)
    return KeyOut.of(key, svc.clock.now())


@router.post(
    "/v1/keys/{key_id}/rotate",
    response_model=RotatedKey,
    status_code=status.HTTP_201_CREATED,
    responses=CHANGES | {409: {"description": "key_not_active: revoked or expired"}},
)
def rotate_key(
    key_id: KeyId,
    request: Request,
    svc: ServicesDep,
    actor: ApiKey = Depends(auth.admin),
    body: Annotated[KeyRotate | None, Body()] = None,
) -> RotatedKey:
    """A new key (a new id and secret, the same role and name) in place of this one,
    which keeps working for `grace_seconds` (default an hour). The body is optional."""
    body = body or KeyRotate()
    plaintext, new, old = keys.rotate_key(
        svc.store,
        svc.clock,
        key_id,
        timedelta(seconds=body.grace_seconds),
        actor.id,
        expires_in=_seconds(body.expires_in_seconds),
    )
    _forget_keys(request)
    now = svc.clock.now()
    return RotatedKey(
        **KeyOut.of(new, now).model_dump(), key=plaintext, replaces=KeyOut.of(old, now)
    )


def _seconds(value: int | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None


def _forget_keys(request: Request) -> None:
    # Other servers' caches let the old state live half a second; this one's, not at all.
    cache: auth.KeyCache = request.app.state.key_cache
    cache.clear()
