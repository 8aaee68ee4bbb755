"""What the WhatsApp sandbox should do, and the Cloud API shapes it speaks (pure, no I/O).

``SandboxScenario`` holds the knobs, ``Traffic`` the customer-service windows and the send
rate (times are passed in), ``planned_statuses`` the deterministic status sequence of a
message, ``check_message`` validates a send request like the Graph API does (template components with
text, payload, currency, date_time and media parameters), and the ``*_event`` functions build
webhook bodies shaped like Meta's current ones: business-scoped user ids (``contacts[].user_id``,
``from_user_id``, ``recipient_user_id``) beside the phone number, which a customer who uses a
username hides from incoming messages (``legacy_webhooks`` sends the shape from before the ids).
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.templates import whatsapp_template_names

__all__ = ["SandboxScenario", "Traffic", "planned_statuses", "check_message", "message_record", "status_event",
           "inbound_event", "read_inbound", "graph_error", "user_id", "DEFAULT_TEMPLATES", "UNDELIVERABLE", "REENGAGEMENT"]

# The business account's approved templates: those the product sends (a template Meta has not approved
# is refused with 132001, as the real API does).
DEFAULT_TEMPLATES = whatsapp_template_names()
UNDELIVERABLE = "131026"
REENGAGEMENT = "131047"
UNDELIVERABLE_SUFFIX = "0026"  # numbers ending like this are never on WhatsApp, whatever the fail_rate
ERROR_TITLES = {100: "Invalid parameter", 130429: "Rate limit hit", 131026: "Message undeliverable",
                131047: "Re-engagement message", 132001: "Template name does not exist in the translation",
                190: "Invalid OAuth access token"}


@dataclass(frozen=True)
class SandboxScenario:
    """Behaviour knobs for the WhatsApp sandbox; the defaults look like a healthy real number.

    fail_rate: fraction of numbers "not on WhatsApp": their messages end ``failed``/131026,
        picked from a hash of the number so reruns agree (numbers ending 0026 always fail).
    read_rate: fraction of delivered messages that are then read (hash of the wamid).
    skip_delivered_when_read: report only ``read`` for read messages, as Meta does when a
        message is delivered and read together.
    rate_limit_per_second: sends per rolling second before 130429 (0 = unlimited).
    window_seconds: the customer-service window opened by a customer's inbound message.
    Outside the window a free-form message is accepted (200 with a wamid) and then reported
    ``failed``/131047 by webhook, as the Cloud API does: there is no synchronous 400 for it.
    approved_templates: template names that pass; others get 132001.
    status_delay: seconds before each status webhook.
    duplicate_webhooks / reorder_webhooks: send each status twice / in reverse order.
    webhook_retries / webhook_retry_delay: extra attempts (exponential backoff) when the
        receiver refuses the connection, times out or answers 5xx.
    legacy_webhooks: send webhooks without business-scoped user ids (Meta's shape before 2026).
    """

    fail_rate: float = 0.02
    read_rate: float = 0.6
    skip_delivered_when_read: bool = False
    rate_limit_per_second: int = 80
    window_seconds: float = 24 * 3600
    approved_templates: frozenset[str] = field(default=DEFAULT_TEMPLATES)
    status_delay: float = 0.5
    duplicate_webhooks: bool = False
    reorder_webhooks: bool = False
    webhook_retries: int = 3
    webhook_retry_delay: float = 0.5
    legacy_webhooks: bool = False

    def __post_init__(self) -> None:
        if not (0.0 <= self.fail_rate <= 1.0 and 0.0 <= self.read_rate <= 1.0):
            raise ValueError("fail_rate and read_rate must be within [0, 1]")
        if self.rate_limit_per_second < 0 or self.webhook_retries < 0:
            raise ValueError("rate_limit_per_second and webhook_retries must be >= 0")
        if min(self.window_seconds, self.status_delay, self.webhook_retry_delay) < 0:
            raise ValueError("durations must be >= 0")
        object.__setattr__(self, "approved_templates", frozenset(self.approved_templates))


@dataclass
class Traffic:
    """Per-number customer-service windows and the rolling one-second send count (monotonic seconds)."""

    scenario: SandboxScenario
    last_inbound: dict[str, float] = field(default_factory=dict)
    recent_sends: deque[float] = field(default_factory=deque)

    def customer_wrote(self, number: str, at: float) -> None:
        self.last_inbound[number] = max(at, self.last_inbound.get(number, at))

    def in_window(self, number: str, now: float) -> bool:
        opened = self.last_inbound.get(number)
        return opened is not None and now - opened < self.scenario.window_seconds

    def rate_limited(self, now: float) -> bool:
        """True if one more send now would exceed ``rate_limit_per_second``; otherwise count it."""
        while self.recent_sends and now - self.recent_sends[0] >= 1.0:
            self.recent_sends.popleft()
        if self.scenario.rate_limit_per_second and len(self.recent_sends) >= self.scenario.rate_limit_per_second:
            return True
        self.recent_sends.append(now)
        return False

    def clear(self) -> None:
        self.last_inbound.clear()
        self.recent_sends.clear()


def _draw(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def planned_statuses(to: str, wamid: str, scenario: SandboxScenario) -> list[tuple[str, str | None]]:
    """The ``(status, error code)`` webhooks for an accepted message, in the order Meta would send them."""
    if to.endswith(UNDELIVERABLE_SUFFIX) or _draw(to) < scenario.fail_rate:
        return [("failed", UNDELIVERABLE)]
    if _draw(wamid) >= scenario.read_rate:
        return [("sent", None), ("delivered", None)]
    if scenario.skip_delivered_when_read:
        return [("sent", None), ("read", None)]
    return [("sent", None), ("delivered", None), ("read", None)]


def graph_error(code: int, details: str, subcode: int | None = None) -> dict[str, Any]:
    """A Graph API error body; ``details`` never names the customer."""
    error: dict[str, Any] = {"message": f"(#{code}) {ERROR_TITLES.get(code, 'Error')}", "type": "OAuthException",
                             "code": code, "error_data": {"messaging_product": "whatsapp", "details": details},
                             "fbtrace_id": "Sandbox" + hashlib.sha256(details.encode()).hexdigest()[:16]}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def _is_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= limit


def check_message(body: Any) -> str | None:
    """Why ``body`` is not a valid Cloud API send request (for a 400 / code 100), or None."""
    if not isinstance(body, Mapping) or body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if body.get("recipient_type", "individual") != "individual":
        return "recipient_type must be individual"
    to = body.get("to")
    if not isinstance(to, str) or not to.removeprefix("+").isdigit() or not 1 <= len(to.removeprefix("+")) <= 15:
        return "to must be a phone number"
    callback = body.get("biz_opaque_callback_data")
    if callback is not None and (not isinstance(callback, str) or len(callback) > 512):
        return "biz_opaque_callback_data must be a string of at most 512 characters"
    kind, content = body.get("type", "text"), body.get(str(body.get("type", "text")))
    if not isinstance(content, Mapping):
        return f"{kind} object is required"
    if kind == "text":
        return None if _is_text(content.get("body"), 4096) else "text.body must be 1-4096 characters"
    if kind == "template":
        language = content.get("language")
        if not _is_text(content.get("name"), 512) or not isinstance(language, Mapping) \
                or not _is_text(language.get("code"), 16):
            return "template needs a name and language.code"
        components = content.get("components", [])
        if not isinstance(components, list):
            return "template components must be a list"
        return next(filter(None, map(_check_component, components)), None)
    if kind == "interactive":
        action, text_body = content.get("action"), content.get("body")
        text = text_body.get("text") if isinstance(text_body, Mapping) else None
        buttons = action.get("buttons") if isinstance(action, Mapping) else None
        if content.get("type") != "button" or not _is_text(text, 1024):
            return "interactive needs type button and body.text of 1-1024 characters"
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return "interactive needs 1-3 buttons"
        replies = [b.get("reply") if isinstance(b, Mapping) and b.get("type") == "reply" else None for b in buttons]
        if not all(isinstance(r, Mapping) and _is_text(r.get("id"), 256) and _is_text(r.get("title"), 20)
                   for r in replies):
            return "each button needs reply.id (1-256) and reply.title (1-20 characters)"
        if len({r["id"] for r in replies}) != len(replies) or len({r["title"] for r in replies}) != len(replies):
            return "button ids and titles must be unique"
        return None
    return f"unsupported message type {str(kind)[:20]!r}"


MEDIA_TYPES = ("image", "document", "video")
_PARAMETERS_BY_COMPONENT = {"header": ("text", "currency", "date_time", "location", *MEDIA_TYPES),
                            "body": ("text", "currency", "date_time")}
_BUTTON_PARAMETERS = {"quick_reply": "payload", "url": "text", "copy_code": "coupon_code"}


def _check_component(component: Any) -> str | None:
    """Why one template component is not what the Cloud API accepts, or None (see Meta's "Send message
    templates": header/body parameters; button components carry a sub_type, an index and one parameter)."""
    if not isinstance(component, Mapping) or not isinstance(component.get("parameters", []), list):
        return "template components must be objects with a parameters list"
    kind, parameters = _lower(component.get("type")), component.get("parameters", [])
    if kind == "button":  # Meta reads component types and sub_types in any case (pywa sends "BODY", "QUICK_REPLY")
        sub_type, index = _lower(component.get("sub_type")), component.get("index")
        if sub_type not in _BUTTON_PARAMETERS:
            return f"button sub_type must be one of {sorted(_BUTTON_PARAMETERS)}"
        if isinstance(index, bool) or not (isinstance(index, int) and 0 <= index <= 9
                                           or isinstance(index, str) and index.isdigit() and int(index) <= 9):
            return "button index must be 0-9"
        if len(parameters) != 1:
            return "a button component carries exactly one parameter"
        return _check_parameter(parameters[0], (_BUTTON_PARAMETERS[sub_type],))
    if kind not in _PARAMETERS_BY_COMPONENT:
        return "template component type must be header, body or button"
    if kind == "header" and len(parameters) > 1 and any(
            isinstance(p, Mapping) and p.get("type") != "text" for p in parameters):
        return "a media or location header carries exactly one parameter"
    return next(filter(None, (_check_parameter(p, _PARAMETERS_BY_COMPONENT[kind]) for p in parameters)), None)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _check_parameter(parameter: Any, allowed: tuple[str, ...]) -> str | None:
    kind = parameter.get("type") if isinstance(parameter, Mapping) else None
    if kind not in allowed:
        return f"parameter type must be one of {', '.join(allowed)}"
    value = parameter.get(kind)
    if kind in ("text", "payload", "coupon_code"):
        return None if isinstance(value, str) and value and len(value) <= (1024 if kind == "text" else 256) \
            else f"{kind} parameter must be 1-{1024 if kind == 'text' else 256} characters"
    if not isinstance(value, Mapping):
        return f"{kind} parameter needs a {kind} object"
    if kind == "currency":
        amount, code = value.get("amount_1000"), value.get("code")
        if not (_is_text(value.get("fallback_value"), 1024) and isinstance(code, str) and len(code) == 3
                and code.isalpha() and code.isupper() and isinstance(amount, int) and not isinstance(amount, bool)):
            return "currency needs fallback_value, a 3-letter ISO 4217 code and an integer amount_1000"
        return None
    if kind == "date_time":
        return None if _is_text(value.get("fallback_value"), 1024) else "date_time needs a fallback_value"
    if kind == "location":
        return None if all(isinstance(value.get(k), (int, float, str)) for k in ("latitude", "longitude")) \
            else "location needs latitude and longitude"
    source = value.get("link", value.get("id"))
    if not isinstance(source, str) or not source or ("link" in value and not source.startswith(("https://", "http://"))):
        return f"{kind} needs an http(s) link or a media id"
    if "filename" in value and not (kind == "document" and _is_text(value["filename"], 240)):
        return "only a document takes a filename"
    return None


def message_record(wamid: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """What ``/_sandbox/messages`` shows for an accepted (already checked) send request."""
    kind, interactive = body.get("type", "text"), body.get("interactive") or {}
    return {"id": wamid, "to": body["to"].removeprefix("+"), "type": kind,
            "text": (body.get("text") or {}).get("body") or (interactive.get("body") or {}).get("text"),
            "template": (body.get("template") or {}).get("name"),
            "buttons": [b["reply"]["title"] for b in (interactive.get("action") or {}).get("buttons", [])],
            "button_ids": [b["reply"]["id"] for b in (interactive.get("action") or {}).get("buttons", [])],
            "callback_data": body.get("biz_opaque_callback_data"), "status": "accepted", "error_code": None}


def _envelope(waba_id: str, phone_number_id: str, display_number: str, value: dict[str, Any]) -> dict[str, Any]:
    metadata = {"display_phone_number": display_number, "phone_number_id": phone_number_id}
    return {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": [
        {"value": {"messaging_product": "whatsapp", "metadata": metadata, **value}, "field": "messages"}]}]}


_COUNTRIES = (("1", "US"), ("31", "NL"), ("32", "BE"), ("33", "FR"), ("34", "ES"), ("39", "IT"), ("44", "GB"),
              ("48", "PL"), ("49", "DE"), ("972", "IL"))


def user_id(number: str) -> str:
    """The sandbox's business-scoped user id for a number: ``<ISO country>.<digits>``, stable per number, like
    Meta's ``US.13491208655302741918`` (it does not reveal the number)."""
    country = next((c for prefix, c in sorted(_COUNTRIES, key=lambda pc: -len(pc[0])) if number.startswith(prefix)),
                   "US")
    return f"{country}.{int.from_bytes(hashlib.sha256(b'bsuid:' + number.encode()).digest()[:8], 'big')}"


def status_event(ids: tuple[str, str, str], *, wamid: str, status: str, recipient: str, timestamp: int,
                 error_code: str | None = None, callback_data: str | None = None,
                 category: str = "utility", legacy: bool = False) -> dict[str, Any]:
    """A status webhook body; ``ids`` is ``(waba_id, phone_number_id, display_phone_number)``.

    The message went to a phone number, so ``recipient_id`` is always there; the current shape adds the
    business-scoped ``recipient_user_id`` and a ``contacts`` entry (no user id for a number not on WhatsApp).
    """
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(timestamp), "recipient_id": recipient}
    on_whatsapp = error_code != UNDELIVERABLE
    if not legacy and on_whatsapp:
        item["recipient_user_id"] = user_id(recipient)
    if callback_data is not None:
        item["biz_opaque_callback_data"] = callback_data
    if error_code:
        title = ERROR_TITLES.get(int(error_code), "Error")
        item["errors"] = [{"code": int(error_code), "title": title, "message": title,
                           "error_data": {"details": title + "."},
                           "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]
    elif status in ("sent", "delivered"):
        item["conversation"] = {"id": hashlib.sha256(recipient.encode()).hexdigest()[:32],
                                "expiration_timestamp": str(timestamp + 24 * 3600), "origin": {"type": category}}
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": category, "type": "regular"}
    value: dict[str, Any] = {"statuses": [item]}
    if not legacy:
        value["contacts"] = [{"wa_id": recipient, **({"user_id": user_id(recipient)} if on_whatsapp else {})}]
    return _envelope(*ids, value)


def read_inbound(body: Any) -> tuple[str, float, dict[str, str | None]]:
    """``(sender digits, age_seconds, inbound_event fields)`` from a ``/_sandbox/inbound`` body, or ValueError."""
    shape = ("expected {from: digits, text?, button_payload?, button_reply_id?, in_reply_to?, username?, "
             "age_seconds >= 0?}")
    if not isinstance(body, Mapping):
        raise ValueError(shape)
    sender, age = str(body.get("from", "")).removeprefix("+"), body.get("age_seconds", 0)
    fields = {k: body.get(k) for k in ("text", "button_payload", "button_reply_id", "in_reply_to", "username")}
    if not sender.isdigit() or not all(v is None or isinstance(v, str) for v in fields.values()):
        raise ValueError(shape)
    if isinstance(age, bool) or not isinstance(age, (int, float)) or not math.isfinite(age) or age < 0:
        raise ValueError(shape)
    return sender, float(age), fields


def inbound_event(ids: tuple[str, str, str], *, wamid: str, sender: str, timestamp: int, text: str | None = None,
                  button_payload: str | None = None, button_reply_id: str | None = None,
                  in_reply_to: str | None = None, username: str | None = None,
                  legacy: bool = False) -> dict[str, Any]:
    """An inbound-message webhook body: a template quick reply (``button_payload``), an interactive
    button reply (``button_reply_id``, titled ``text``) or a text message.

    A customer with a ``username`` is named by the business-scoped ``from_user_id`` / ``contacts[].user_id``
    only: ``from`` and ``wa_id`` are left out, as Meta does for username users whose number the business
    has not been given."""
    message: dict[str, Any] = {"from": sender, "id": wamid, "timestamp": str(timestamp)}
    contact: dict[str, Any] = {"profile": {"name": "Sandbox Customer"}, "wa_id": sender}
    if not legacy:
        message["from_user_id"] = contact["user_id"] = user_id(sender)
        if username is not None:
            del message["from"], contact["wa_id"]
            contact["profile"]["username"] = username
    if in_reply_to:
        message["context"] = {"from": ids[2], "id": in_reply_to}
    if button_payload is not None:
        message.update(type="button", button={"payload": button_payload, "text": text or button_payload})
    elif button_reply_id is not None:
        reply = {"id": button_reply_id, "title": text or button_reply_id}
        message.update(type="interactive", interactive={"type": "button_reply", "button_reply": reply})
    else:
        message.update(type="text", text={"body": text or ""})
    return _envelope(*ids, {"contacts": [contact], "messages": [message]})
