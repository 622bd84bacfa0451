"""Token authentication with an expiry."""

from django.contrib.auth.models import AbstractBaseUser
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from webapp.accounts.services import api_token_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing (and deleting) tokens older than FACET_API_TOKEN_TTL_SECONDS."""

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Token]:
        user, token = super().authenticate_credentials(key)
        if api_token_expired(token):
            token.delete()
            raise AuthenticationFailed("This API token has expired; obtain a new one at /api/auth/token/.")
        return user, token
