"""What the e-mail gateway hands the SMTP adapter: a marketing e-mail carries RFC 8058 one-click unsubscribe
headers and visible unsubscribe and preference links in both parts, in the customer's language; a
transactional one carries none."""

from __future__ import annotations

from connectors.gateways.email import request_for
from connectors.preferences.tokens import verify
from connectors.providers.smtp import build_message
from schemas.types import Channel, Purpose
from streams.settings import PreferenceSettings
from tests import factories as f

CONFIG = PreferenceSettings(public_base_url="https://prefs.example")


def email(**overrides):
    values = dict(channel=Channel.EMAIL, to="zofia@example.com", locale="pl", sms=None, subject="Promocja",
                  body="Cześć Zofia,\n\n-20% na wszystko.", purpose=Purpose.MARKETING, template="promo")
    return f.command(**{**values, **overrides})


def test_a_marketing_email_has_one_click_headers_and_visible_links_in_the_customers_language() -> None:
    command = email()
    request = request_for(command, CONFIG)
    assert request.list_unsubscribe.startswith("https://prefs.example/unsubscribe/")
    claims = verify(CONFIG.secret.get_secret_value().encode(), request.list_unsubscribe.rsplit("/", 1)[1], f.NOW)
    assert (claims.customer_id, claims.message_id) == (command.customer_id, command.message_id)
    assert f"Wypisz się z tych e-maili: {request.list_unsubscribe}" in request.text
    assert "Twoje preferencje wiadomości: https://prefs.example/preferences/" in request.text
    assert f'<a href="{request.list_unsubscribe}">Wypisz się z tych e-maili</a>' in request.html
    assert request.html.index('id="unsubscribe"') < request.html.index("</body>")
    message = build_message(request, "shop@example.com", "switchboard.local")
    assert message["List-Unsubscribe"] == f"<{request.list_unsubscribe}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_every_attempt_at_a_marketing_email_carries_the_same_links() -> None:
    command = email()
    assert request_for(command, CONFIG) == request_for(command, CONFIG)


def test_a_language_without_texts_gets_the_english_footer() -> None:
    assert "Unsubscribe from these e-mails: https://" in request_for(email(locale="fr"), CONFIG).text


def test_a_transactional_email_has_no_unsubscribe_header_nor_footer() -> None:
    request = request_for(email(purpose=Purpose.TRANSACTIONAL), CONFIG)
    assert request.list_unsubscribe is None and "prefs.example" not in request.text + request.html
    assert "List-Unsubscribe" not in build_message(request, "shop@example.com", "switchboard.local")
