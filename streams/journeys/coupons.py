"""Unique, deterministic coupon codes: the same customer, journey, step and occasion (the trigger event)
always get the same code, and a new occasion (next year's birthday) a new one.

A retry or a replay therefore yields the same code (recorded on the outcome), and codes cannot be
guessed from a customer id without the deployment's coupon key (an HMAC, not a plain hash).
Codes use Crockford's base32 alphabet (no I, L, O, U): easy to read out and type.

Amounts are shown as the texts show every amount: minor units as ``5.00``, the currency being the
step's (or the event's) ``currency`` variable, which the templates append (``streams.templates``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from streams.journeys.definitions import Coupon

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class IssuedCoupon:
    code: str
    expires_at: dt.datetime
    description: str  # "10%" or "5.00" off, for the message text
    min_cart: str | None = None  # "50.00": the least an order must come to; None when any order will do


def amount(minor: int) -> str:
    """An amount in minor units as the texts show it: 500 -> "5.00" (exact: no float on the way)."""
    return f"{minor // 100}.{minor % 100:02d}"


def code_for(secret: bytes, customer_id: str, journey: str, step: str, prefix: str = "SB", length: int = 8,
             occasion: str = "") -> str:
    message = f"{journey}/{step}/{customer_id}" + (f"/{occasion}" if occasion else "")
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, 32)
        chars.append(_ALPHABET[index])
    return f"{prefix}-{''.join(chars)}"


def issue(coupon: Coupon, secret: bytes, customer_id: str, journey: str, step: str, now: dt.datetime,
          occasion: str = "") -> IssuedCoupon:
    off = f"{coupon.percent_off}%" if coupon.percent_off else amount(coupon.amount_off_minor or 0)
    return IssuedCoupon(code_for(secret, customer_id, journey, step, coupon.prefix, occasion=occasion),
                        now + coupon.valid_for, off, amount(coupon.min_cart_minor) if coupon.min_cart_minor else None)
