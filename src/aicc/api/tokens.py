"""Bearer API tokens: shown once in plain text, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aicc.errors import AuthenticationFailed, InvalidInput
from aicc.store.models import ApiToken, User, utcnow
from aicc.tenancy.service import get_user

TOKEN_PREFIX = "aicc_"
# Tokens we mint, and admin tokens from the configuration (16+ printable characters).
TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-.~+/=]{16,256}$")
ADMIN_USER = "admin"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_token_format(token: str) -> None:
    if not TOKEN_RE.match(token):
        raise AuthenticationFailed(
            "malformed token: expected 16-256 characters of [A-Za-z0-9_-.~+/=]",
            field="authorization")


def create_token(*, session: Session, user_id: int, name: str = "",
                 expires_at: datetime | None = None) -> str:
    """Mint a token for a user; the plain text is returned once and never stored."""
    get_user(session=session, user_id=user_id)
    if len(name) > 128:
        raise InvalidInput("token name must be at most 128 characters", field="name")
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidInput("expires_at needs a time zone", field="expires_at")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user_id, name=name, token_hash=hash_token(token),
                         prefix=token[:12], expires_at=expires_at))
    session.flush()
    return token


def register_token(*, session: Session, user_id: int, token: str, name: str = "") -> None:
    """Store the hash of a token chosen elsewhere (the configured admin token); idempotent."""
    check_token_format(token)
    digest = hash_token(token)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if row is None:
        session.add(ApiToken(user_id=user_id, name=name, token_hash=digest, prefix=token[:4]))
    elif row.user_id != user_id or row.revoked_at is not None:
        row.user_id, row.revoked_at = user_id, None
    session.flush()


def ensure_admin(*, session: Session, admin_token: str | None) -> User:
    """The center admin user exists, and the configured admin token (if any) authenticates it."""
    user = session.scalar(select(User).where(User.name == ADMIN_USER))
    if user is None:
        user = User(name=ADMIN_USER, email="", is_admin=True)
        session.add(user)
        session.flush()
    elif not user.is_admin:
        user.is_admin = True
    if admin_token:
        register_token(session=session, user_id=user.id, token=admin_token, name="configured")
    return user


def user_for_token(*, session: Session, token: str, now: datetime | None = None) -> User:
    """The user a presented token belongs to, or ``AuthenticationFailed``."""
    check_token_format(token)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    now = now or utcnow()
    if row is None or row.revoked_at is not None or (
            row.expires_at is not None and row.expires_at <= now):
        raise AuthenticationFailed("unknown, revoked or expired token", field="authorization")
    return row.user


def revoke_token(*, session: Session, token: str) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise AuthenticationFailed("unknown token", field="token")
    row.revoked_at = utcnow()
    session.flush()
