"""The preference centre's HTML, from a sandboxed, autoescaping Jinja2 environment. Pure.

Contact points are shown masked (``+97250•••4567``, ``a•••@example.com``): the page proves we know
where to reach the customer without handing a full number to whoever holds the link. Every control
has a label; Hebrew pages are right-to-left. No script: the page works with a plain form post.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from jinja2 import DictLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from connectors.preferences.choices import (
    KEEP_PAUSE,
    LANGUAGES,
    PAUSE_DAYS,
    contact_points,
    language_of,
    marketing_on,
    paused_until,
    preferred_channel,
)
from connectors.preferences.texts import LANGUAGE_NAMES, REFUSALS, RTL, TEXTS, UNSUBSCRIBE, channel_name
from schemas.customers import ConsentState, CustomerProfile

HIDDEN = "•••"
_ISOLATE, _POP = "\u2068", "\u2069"  # first-strong isolate: a number stays "+972…" inside Hebrew text

_LAYOUT = """<!doctype html>
<html lang="{{ lang }}" dir="{{ dir }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
fieldset, .field { margin: 1rem 0; } label { margin-inline-start: .4rem; } select { margin-inline-start: .4rem; }
.disclosure { font-size: .9rem; color: #333; } button { padding: .5rem 1.5rem; font-size: 1rem; }
</style>
</head>
<body>
<main id="{{ page_id }}">
{% block main %}{% endblock %}
</main>
</body>
</html>
"""

_FORM = """{% extends "layout" %}{% block main %}
<h1>{{ t.title }}</h1>
<p>{{ t.intro }}</p>
<form id="preferences-form" method="post" action="{{ action }}">
<input type="hidden" name="token" value="{{ token }}">
<input type="hidden" name="shown_language" value="{{ lang }}">
<fieldset>
<legend>{{ t.marketing_legend }}</legend>
<p id="marketing-hint">{{ t.marketing_hint }}</p>
{% for c in channels %}
<div class="field"><input type="checkbox" id="marketing_{{ c.value }}" name="marketing_{{ c.value }}" value="yes"
 aria-describedby="marketing-hint disclosure"{% if c.on %} checked{% endif %}>
<label for="marketing_{{ c.value }}">{{ c.label }}</label></div>
{% else %}
<p>{{ t.no_channels }}</p>
{% endfor %}
</fieldset>
<div class="field"><label for="preferred">{{ t.preferred }}</label>
<select id="preferred" name="preferred">
{% if not preferred %}<option value="" selected>{{ t.no_preference }}</option>{% endif %}
{% for c in channels %}
<option value="{{ c.value }}"{% if c.value == preferred %} selected{% endif %}>{{ c.name }}</option>
{% endfor %}</select></div>
<div class="field"><label for="language">{{ t.language }}</label>
<select id="language" name="language">
{% for code, name in languages %}
<option value="{{ code }}" lang="{{ code }}"{% if code == lang %} selected{% endif %}>
{{- name }}</option>
{% endfor %}</select></div>
<div class="field"><label for="pause">{{ t.pause }}</label>
<select id="pause" name="pause">
{% if paused_until %}<option value="{{ keep }}" selected>{{ paused_until }}</option>{% endif %}
<option value="0"{% if not paused_until %} selected{% endif %}>{{ t.no_pause }}</option>
{% for value, name in pauses %}<option value="{{ value }}">{{ name }}</option>
{% endfor %}</select></div>
<p id="disclosure" class="disclosure">{{ disclosure }}</p>
<button type="submit" id="save">{{ t.save }}</button>
</form>
{% endblock %}
"""

_STATUS = """{% extends "layout" %}{% block main %}
<h1>{{ title }}</h1>
<p id="message">{{ message }}</p>
{% if back %}<p><a href="{{ back }}">{{ back_label }}</a></p>{% endif %}
{% endblock %}
"""

_CONFIRM = """{% extends "layout" %}{% block main %}
<h1>{{ title }}</h1>
<p id="message">{{ message }}</p>
<form id="unsubscribe-form" method="post" action="{{ action }}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit" id="unsubscribe">{{ button }}</button>
</form>
<p><a href="{{ back }}">{{ back_label }}</a></p>
{% endblock %}
"""

_ENV = ImmutableSandboxedEnvironment(loader=DictLoader({"layout": _LAYOUT, "form": _FORM, "status": _STATUS,
                                                        "confirm": _CONFIRM}),
                                     autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                                     lstrip_blocks=True)
_TEMPLATES = {name: _ENV.get_template(name) for name in ("form", "status", "confirm")}  # compiled now: broken fails at start


def mask_contact(contact: str) -> str:
    """``+972501234567`` -> ``+97250•••4567``; ``ana@example.com`` -> ``a•••@example.com``."""
    if "@" in contact:
        local, _, domain = contact.rpartition("@")
        return f"{local[:1]}{HIDDEN}@{domain}"
    if len(contact) >= 11:
        return f"{contact[:6]}{HIDDEN}{contact[-4:]}"
    return f"{contact[:3]}{HIDDEN}{contact[-2:]}"


def disclosure(language: str) -> str:
    return TEXTS[language]["disclosure"]


def render_form(profile: CustomerProfile, consent: Mapping[str, ConsentState], token: str, action: str,
                now: dt.datetime) -> str:
    lang = language_of(profile.locale)
    t = TEXTS[lang]
    channels = [{"value": channel.value, "name": channel_name(lang, channel), "on": marketing_on(consent, channel),
                 "label": t["marketing_label"].format(channel=channel_name(lang, channel),
                                                      contact=f"{_ISOLATE}{mask_contact(contact)}{_POP}")}
                for channel, contact in contact_points(profile).items()]
    preferred = preferred_channel(profile)
    until = paused_until(profile, now)
    return _TEMPLATES["form"].render(
        lang=lang, dir=_dir(lang), title=t["title"], page_id="preferences", t=t, action=action, token=token,
        channels=channels, preferred=preferred.value if preferred else "",
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        paused_until=t["keep_pause"].format(date=until.date().isoformat()) if until else "", keep=KEEP_PAUSE,
        pauses=[(str(n), t["pause_days"].format(n=n)) for n in PAUSE_DAYS], disclosure=disclosure(lang))


def render_saved(language: str, back: str) -> str:
    t = TEXTS[language]
    return _TEMPLATES["status"].render(lang=language, dir=_dir(language), page_id="saved", title=t["saved_title"],
                                       message=t["saved_body"], back=back, back_label=t["back"])


def render_unsubscribe_confirm(language: str, action: str, back: str) -> str:
    """The page a browser gets from an e-mail's unsubscribe link: one button that posts the one-click body."""
    t = UNSUBSCRIBE[language]
    return _TEMPLATES["confirm"].render(lang=language, dir=_dir(language), page_id="unsubscribe",
                                        title=t["confirm_title"], message=t["confirm_body"], action=action, button=t["confirm_button"],
                                        back=back, back_label=TEXTS[language]["title"])


def render_unsubscribed(language: str, back: str) -> str:
    t = UNSUBSCRIBE[language]
    return _TEMPLATES["status"].render(lang=language, dir=_dir(language), page_id="unsubscribed",
                                       title=t["done_title"], message=t["done_body"], back=back,
                                       back_label=TEXTS[language]["title"])


def render_refusal(kind: str) -> tuple[int, str]:
    """The HTTP status and page for a refusal (see :data:`texts.REFUSALS`)."""
    status, title, message = REFUSALS[kind]
    return status, _TEMPLATES["status"].render(lang="en", dir="ltr", page_id="refused", title=title,
                                               message=message, back="", back_label="")


def _dir(language: str) -> str:
    return "rtl" if language in RTL else "ltr"
