"""``switchboard produce`` on the real broker: every bad line is that line's error, the others still go."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from schemas.catalog import CUSTOMER_PROFILES, TopicNames
from schemas.customers import CustomerProfile
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from tests.support import ROOT, consume_until, env_of

pytestmark = pytest.mark.integration


def test_an_oversized_line_is_refused_alone_and_the_lines_after_it_still_go(settings: Settings) -> None:
    create_topics(settings)
    before, after = f.profile("before"), f.profile("after")
    oversized = f.profile("oversized", first_name="A" * 2_000_000)  # over the 1 MiB a producer request may carry
    lines = [p.model_dump_json() for p in (before, oversized, after)]
    done = subprocess.run([sys.executable, "-m", "connectors.cli", "produce", "customers.profiles"], cwd=ROOT,
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env_of(settings)})
    assert done.returncode == 1, done.stderr
    assert "line 2: invalid event: the encoded record is" in done.stderr and "Traceback" not in done.stderr
    records = consume_until(settings.kafka.bootstrap_servers, TopicNames(settings.kafka.topic_prefix)(CUSTOMER_PROFILES),
                            lambda seen: {p.customer_id for _, p in seen} >= {"before", "after"},
                            60.0, CustomerProfile)
    assert "oversized" not in {p.customer_id for _, p in records}
