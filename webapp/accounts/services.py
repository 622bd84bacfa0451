"""API tokens: issued for FACET_API_TOKEN_TTL_SECONDS, revoked at log-out and at any password change."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework.authtoken.models import Token


def api_token_expires_at(token: Token) -> datetime:
    return token.created + timedelta(seconds=settings.FACET_API_TOKEN_TTL_SECONDS)


def api_token_expired(token: Token) -> bool:
    return api_token_expires_at(token) <= timezone.now()


def api_token_issue(user: AbstractBaseUser) -> Token:
    """The user's current token, or a new one when there is none or it has expired."""
    token = Token.objects.filter(user=user).first()
    if token is not None and api_token_expired(token):
        token.delete()
        token = None
    return token or Token.objects.create(user=user)


def api_tokens_revoke(user: AbstractBaseUser) -> int:
    """Delete the user's API tokens; returns how many there were."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted
