"""Each store's own rules: double opt-in, keywords, quiet hours, frequency caps. Pure data, no Faust.

Loaded from one YAML file (``SWITCHBOARD_WORKER__STORES_FILE``)::

    defaults:                     # every store starts from these
      time_zone: Europe/Amsterdam
      quiet_hours: {start: "09:00", end: "20:00"}
    stores:
      shop-il:                    # merged over the defaults, key by key
        name: "Shop IL"           # opens every marketing SMS (default: the store id)
        sms_opt_out: first_in_conversation   # or every_message (the default); sms_opt_out_days: 30
        time_zone: Asia/Jerusalem
        double_opt_in: true
        keywords: {extra: {opt_out: ["די"]}, help_text: {he: "לעזרה: 03-1234567"}}
        frequency_caps:
          rules: [{max_count: 1, window_hours: 24}]
          on_capped: drop
          classes: {newsletter: {rules: [{max_count: 1, window_hours: 168}]}}

Without a file every store gets :class:`StoreConfig`'s defaults. A file that does not validate stops
the worker at start-up with the path of the bad key (``stores.shop-il.quiet_hours.start``), never at
2 a.m.

``product_url`` (e.g. ``https://shop.example/p/{sku}``) links a recommended product (the cross-sell).

Quiet hours: the region's rule (``streams.quiet_hours.RULES_BY_REGION``, by the customer's phone
country, else the store's ``country``) unless the store gives ``start``/``end`` of its own, which
replace the daily window and keep the region's weekday, holiday and Shabbat rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.types import Channel
from streams import caps, keywords, quiet_hours
from streams.errors import ConfigurationError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeywordSettings(_Strict):
    extra: dict[keywords.Keyword, list[str]] = {}
    removed: list[str] = []
    help_text: dict[str, str] = {}

    @field_validator("removed")
    @classmethod
    def _keeps_protected_words(cls, value: list[str]) -> list[str]:
        keywords.KeywordConfig(removed=value)  # raises for an FCC word: at load, not at the first reply
        return value

    @cached_property
    def config(self) -> keywords.KeywordConfig:
        return keywords.KeywordConfig(extra=self.extra, removed=self.removed, help_text=self.help_text)


class QuietHoursSettings(_Strict):
    enabled: bool = True
    start: dt.time | None = Field(None, description="Replaces the region's daily opening time.")
    end: dt.time | None = Field(None, description="Replaces the region's daily closing time.")
    observe_shabbat: bool = Field(True, description="Israeli numbers: no marketing from Friday 16:00 to Saturday 20:00.")
    transactional: bool = Field(False, description="Also defer transactional messages (exempt by default).")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _sexagesimal(cls, value: Any) -> Any:
        """YAML 1.1 reads an unquoted 09:30 as the base-60 integer 570: take it as minutes after midnight."""
        return dt.time(value // 60, value % 60) if isinstance(value, int) and 0 <= value < 1440 else value

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: dt.time | None) -> dt.time | None:
        """An offset (pydantic reads 1440 = unquoted 24:00 as 00:24 UTC) would fail in every decision."""
        if value is not None and value.tzinfo is not None:
            raise ValueError('must be a local time of day such as "21:00", without a UTC offset')
        return value

    def rule(self, region: str | None) -> quiet_hours.QuietHoursRule:
        rule = quiet_hours.rule_for(region, observe_shabbat=self.observe_shabbat)
        if self.start is not None:
            rule = replace(rule, start=self.start)
        if self.end is not None:
            rule = replace(rule, end=self.end)
        return rule


class CapRuleSettings(_Strict):
    max_count: int = Field(ge=1)
    window_hours: float = Field(gt=0)

    def rule(self) -> caps.CapRule:
        return caps.CapRule(self.max_count, dt.timedelta(hours=self.window_hours))


_DEFAULT_RULES = [CapRuleSettings(max_count=r.max_count, window_hours=r.window / dt.timedelta(hours=1))
                  for r in caps.DEFAULT_POLICY.rules]


class ClassCapSettings(_Strict):
    rules: list[CapRuleSettings]
    on_capped: Literal["drop", "defer"] | None = None  # None: the store's choice


class CapsSettings(_Strict):
    enabled: bool = True
    rules: list[CapRuleSettings] = Field(default_factory=lambda: list(_DEFAULT_RULES))
    on_capped: Literal["drop", "defer"] = "defer"
    classes: dict[str, ClassCapSettings] = Field(
        {}, description="Extra caps for one message class, counted on top of the store-wide ones.")

    def policies(self, message_class: str | None) -> dict[str, caps.FrequencyPolicy]:
        """Cap state slot -> policy that applies to a marketing message of this class."""
        if not self.enabled:
            return {}
        found = {"all": caps.FrequencyPolicy(tuple(r.rule() for r in self.rules), self.on_capped)}
        extra = self.classes.get(message_class or "")
        if extra is not None:
            found[f"class:{message_class}"] = caps.FrequencyPolicy(
                tuple(r.rule() for r in extra.rules), extra.on_capped or self.on_capped)
        return {slot: policy for slot, policy in found.items() if policy.rules}


SMS_OPT_OUT_EVERY_MESSAGE = "every_message"
SMS_OPT_OUT_FIRST_IN_CONVERSATION = "first_in_conversation"


class StoreConfig(_Strict):
    name: str | None = Field(None, description="The store's name as its customers know it: every marketing SMS "
                                               "opens with it (default: the store id).")
    sms_opt_out: Literal["every_message", "first_in_conversation"] = Field(
        SMS_OPT_OUT_EVERY_MESSAGE, description="Which marketing SMS carry the opt-out line: every one, or the "
                                               "first of a conversation (none for sms_opt_out_days before).")
    sms_opt_out_days: int = Field(30, ge=1, description="A conversation's length for first_in_conversation.")
    time_zone: str = Field("UTC", description="The store's zone: quiet hours when the customer's is unknown.")
    country: str | None = Field(None, description="ISO 3166 region for quiet hours when a number has none.")
    double_opt_in: bool = Field(False, description="SMS/WhatsApp marketing opt-ins stay pending until a YES.")
    double_opt_in_channels: list[Channel] = [Channel.SMS, Channel.WHATSAPP]
    keywords: KeywordSettings = KeywordSettings()
    quiet_hours: QuietHoursSettings = QuietHoursSettings()
    frequency_caps: CapsSettings = CapsSettings()
    product_url: str | None = Field(None, description="A product's page, {sku} replaced by its SKU: the link of a "
                                                      "recommendation, e.g. https://shop.example/p/{sku}.")

    @field_validator("product_url")
    @classmethod
    def _has_sku(cls, value: str | None) -> str | None:
        if value is not None and "{sku}" not in value:
            raise ValueError("must contain {sku}, e.g. https://shop.example/p/{sku}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def needs_confirmation(self, channel: Channel | str) -> bool:
        return self.double_opt_in and Channel(channel) in self.double_opt_in_channels


class StoreDirectory:
    """Store id -> its config (the defaults merged with its own keys), built once at start-up."""

    def __init__(self, defaults: Mapping[str, Any] | None = None,
                 stores: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._raw_defaults = dict(defaults or {})
        self.default = self._validate(self._raw_defaults, "defaults")
        self._stores = {store_id: self._validate(_merge(self._raw_defaults, own or {}), f"stores.{store_id}")
                        for store_id, own in (stores or {}).items()}

    def __call__(self, store_id: str) -> StoreConfig:
        return self._stores.get(store_id, self.default)

    @staticmethod
    def _validate(raw: Mapping[str, Any], where: str) -> StoreConfig:
        try:
            return StoreConfig.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"store settings invalid: {problems}") from None

    @classmethod
    def load(cls, path: Path | None) -> StoreDirectory:
        if path is None:
            return cls()
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read store settings {path}: {exc}") from None
        if not isinstance(data, dict) or not set(data) <= {"defaults", "stores"}:
            raise ConfigurationError(f"{path}: expected a mapping with 'defaults' and/or 'stores'")
        return cls(data.get("defaults"), data.get("stores"))


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged
