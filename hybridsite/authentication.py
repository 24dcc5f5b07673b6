"""Token authentication that does not ask Postgres on every request.

The customer write endpoints (carts) must make no Postgres query, and DRF's token lookup is one
(two with the user). The token's owner is cached in Redis under the token's SHA-256 for
``AUTH_TOKEN_CACHE_SECONDS``; deleting the token, or changing or deleting its user, drops the
entry at once (signals), and the TTL bounds what a change outside the ORM leaves behind. Unknown
tokens are cached briefly too, so guessing costs Postgres nothing either. Without Redis the
lookup falls back to Postgres.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from . import cache_keys, redis_client

logger = logging.getLogger(__name__)

UNKNOWN = b"-"
UNKNOWN_TTL_SECONDS = 30


def _key(token: str) -> str:
    return cache_keys.auth_token(hashlib.sha256(token.encode()).hexdigest())


class CachedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, answered from Redis when it can be. The user it gives is
    built from the cached fields (pk, username, staff flag) and must not be saved."""

    def authenticate_credentials(self, key: str) -> tuple[Any, None]:
        try:
            cached = redis_client.client().get(_key(key))
        except RedisError as exc:
            logger.warning("token cache unavailable (%s): asking Postgres", exc)
            return super().authenticate_credentials(key)
        if cached == UNKNOWN:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if cached is not None:
            text = cached.decode() if isinstance(cached, bytes) else cached
            pk, is_staff, username = text.split(":", 2)
            user = get_user_model()(pk=int(pk), username=username, is_staff=is_staff == "1", is_active=True)
            return user, None
        try:
            user, _ = super().authenticate_credentials(key)
        except exceptions.AuthenticationFailed:
            self._store(key, UNKNOWN, UNKNOWN_TTL_SECONDS)
            raise
        owner = f"{user.pk}:{int(user.is_staff)}:{user.get_username()}".encode()
        self._store(key, owner, settings.AUTH_TOKEN_CACHE_SECONDS)
        return user, None

    @staticmethod
    def _store(key: str, value: bytes, ttl: int) -> None:
        try:
            redis_client.client().set(_key(key), value, ex=ttl)
        except RedisError as exc:
            logger.warning("token cache not filled: %s", exc)


def forget_tokens(*keys: str) -> None:
    """Drop the cached owners of these tokens. A failure is logged: the TTL then bounds it."""
    if not keys:
        return
    try:
        redis_client.client().delete(*(_key(key) for key in keys))
    except RedisError as exc:
        logger.warning(
            "token cache entries not dropped (they expire within %ss): %s", settings.AUTH_TOKEN_CACHE_SECONDS, exc
        )


def _token_deleted(sender: type, instance: Token, **kwargs: Any) -> None:
    forget_tokens(instance.key)


def _user_changed(sender: type, instance: Any, **kwargs: Any) -> None:
    """Deactivation, a new username or staff flag: the cached copy must not outlive the change."""
    forget_tokens(*Token.objects.filter(user_id=instance.pk).values_list("key", flat=True))


def connect() -> None:
    post_delete.connect(_token_deleted, sender=Token, dispatch_uid="hybridsite.auth.token_deleted")
    user_model = get_user_model()
    post_save.connect(_user_changed, sender=user_model, dispatch_uid="hybridsite.auth.user_saved")
    post_delete.connect(_user_changed, sender=user_model, dispatch_uid="hybridsite.auth.user_deleted")
