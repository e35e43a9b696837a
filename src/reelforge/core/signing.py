"""HMAC signatures: expiring download URLs and webhook bodies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def sign_path(secret: str, path: str, expires: int) -> str:
    msg = f"{path}\n{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()[:32]


def signed_query(secret: str, path: str, ttl_s: int, now: float | None = None) -> str:
    expires = int((now or time.time()) + ttl_s)
    return f"expires={expires}&sig={sign_path(secret, path, expires)}"


def verify_path(secret: str, path: str, expires: int, sig: str, now: float | None = None) -> bool:
    if expires < (now or time.time()):
        return False
    return hmac.compare_digest(sign_path(secret, path, expires), sig)


def webhook_secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def webhook_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers plus ``X-Webhook-Signature``.

    ``X-Webhook-Signature`` is the hex HMAC-SHA256 of the raw body keyed with the secret
    string exactly as the account sees it (``whsec_…``), which is what vidgen's Node
    snippet computes from ``process.env.WEBHOOK_SECRET``. The Standard Webhooks
    signature keys with the base64-decoded bytes, as that spec says.
    """
    key = webhook_secret_bytes(secret)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    sig = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{sig}",
        "x-webhook-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    }
