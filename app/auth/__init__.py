"""API keys with per-collection roles, and per-key rate limits."""

from app.auth.keys import ApiKey, KeyStore, Role, bearer_token, check_admin
from app.auth.ratelimit import RateLimiter, TokenBucket

__all__ = [
    "ApiKey",
    "KeyStore",
    "RateLimiter",
    "Role",
    "TokenBucket",
    "bearer_token",
    "check_admin",
]
