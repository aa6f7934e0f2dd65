"""What the CLI says when the global view cannot be read."""

from __future__ import annotations

import redis

from ansible_collections.onvm.nfv.plugins.module_utils import global_view

PASSWORD_FILE = global_view.DEFAULT_PASSWORD_FILE


def redis_error(url: str, e: Exception) -> str:
    """What went wrong reaching the view, and what to do about a password."""
    hint = ""
    if isinstance(e, redis.AuthenticationError) or "NOAUTH" in str(e):
        hint = " (the deploy's Redis wants its password: --redis-password-file %s)" % PASSWORD_FILE
    return "global view at %s: %s%s" % (url, e, hint)
