"""``switchboard sandbox PROVIDER --port N``: every sandbox listens where it is told, not on its settings' port."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.support import Child, free_port, http_ok, wait_until

pytestmark = pytest.mark.integration


def _smtp_answers(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=1) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


@pytest.mark.parametrize("provider", ["twilio", "vonage", "whatsapp", "smtp"])
def test_every_sandbox_listens_on_the_port_it_is_given(provider: str, tmp_path: Path) -> None:
    settings = Settings()
    settings.sandbox.port, settings.sandbox.vonage_port, settings.sandbox.whatsapp_port = (
        free_port(), free_port(), free_port())  # the settings' ports: free, and never the one asked for
    settings.sandbox.smtp_port, settings.sandbox.smtp_http_port = free_port(), free_port()
    port = free_port()
    child = Child(["sandbox", provider, "--port", str(port)], settings, tmp_path / f"{provider}.log")
    try:
        answers = (lambda: _smtp_answers(port)) if provider == "smtp" else (
            lambda: http_ok(f"http://127.0.0.1:{port}/_sandbox/stats"))
        wait_until(answers, 30, f"{provider} sandbox on --port {port}", child)
    finally:
        child.stop()
