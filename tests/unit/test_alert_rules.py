"""The SREs' alert rules only name metrics that Switchboard really exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from streams.metrics import Metrics

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported_names() -> set[str]:
    """Series names of every metric family (labelled families export no sample before first use)."""
    registry = CollectorRegistry()
    Metrics(registry)
    return {family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]}


def test_every_metric_in_the_alert_rules_is_exported() -> None:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    referenced = {name for rule in rules for name in re.findall(r"switchboard_[a-z_]+", rule["expr"])}

    assert referenced, "the rules reference no metric"
    assert referenced <= exported_names()


def test_every_alert_says_what_to_do() -> None:
    for rule in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]:
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
