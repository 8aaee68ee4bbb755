"""GDPR erasure: what is kept of an erased customer is one keyed hash of their id.

Pure. The hash is an HMAC-SHA256 under the deployment's erasure key (``SWITCHBOARD_WORKER__ERASURE_KEY``),
so the suppression table cannot be reversed by hashing a list of likely customer ids without the key.
"""

from __future__ import annotations

import hashlib
import hmac


def suppression_key(secret: bytes, customer_id: str) -> bytes:
    """The key of a customer's suppression entry (hex, so it is also readable in the changelog)."""
    return hmac.new(secret, customer_id.encode("utf-8"), hashlib.sha256).hexdigest().encode("ascii")
