"""The one settings class: ``SWITCHBOARD_<SECTION>__<KEY>`` environment variables.

With no provider credentials configured, every gateway talks to the local sandboxes.
Only :meth:`Settings.redacted` is ever logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field("", description="Prefix of every topic name (tests, multi-tenant clusters).")
    partitions: int = Field(6, ge=1, description="Shared by every customer-keyed topic, so joins stay local.")
    replication_factor: int = Field(1, ge=1)


class WorkerSettings(BaseModel):
    app_id: str = "switchboard"
    web_host: str = Field("127.0.0.1", description="Faust web server bind address (0.0.0.0 in a container).")
    web_port: int = Field(6066, description="Faust web server: /metrics and faust's views (the worker's admin port).")
    data_dir: Path = Path(".switchboard/worker")
    store: str = Field("memory://", description="Table store: memory:// or rocksdb://")
    default_country: str = Field("US", description="Region for pricing when a number has none.")
    smart_encoding: bool = Field(False, description="Replace look-alike characters to keep SMS in GSM-7.")
    receipt_timeouts: dict[str, float] = Field(
        default_factory=lambda: {"sms": 900.0, "whatsapp": 900.0},
        description="Seconds to wait for a delivery receipt per channel before falling back (e-mail has none).")
    producer_linger_ms: int = Field(
        5, ge=0, le=100, description="Milliseconds the worker's producer waits to batch records. The owner hands a "
                                     "whole batch's records over at once and waits for them, so a short linger "
                                     "fills the producer's batches instead of adding latency.")
    batch_linger_ms: int = Field(
        5, ge=1, le=1000, description="Milliseconds the owner waits for more input before deciding what it has "
                                      "(at most 500 records a batch).")
    uvloop: bool = Field(
        False, description="Run the worker on uvloop. Off: no throughput gain in `make bench` on a quiet machine, and "
                           "worker starts hung more often with it (see README, Performance).")
    hot_customers: int = Field(
        20_000, ge=0, description="Customers' states kept decoded (the most recently used); the others are held as "
                                  "their changelog record's bytes (about a third of the memory) and decoded when "
                                  "touched.")
    timer_interval: float = Field(1.0, gt=0, description="Seconds between two looks at the due-time index (deferred "
                                                         "sends, journey waits, receipt deadlines); a look costs "
                                                         "O(timers due), not O(customers).")
    session_timeout: float = Field(
        30.0, ge=6, description="Seconds before the group gives a silent worker's partitions to another; "
                                "a restarted worker waits this long for its own old session to expire.")
    stores_file: Path | None = Field(None, description="YAML of per-store rules (streams/stores.py); none: defaults.")
    journeys_dir: Path | None = Field(None, description="Journey YAML files; none: the shipped deploy/journeys.")
    journey_time_scale: float = Field(
        1.0, gt=0, le=1, description="Multiplies every journey wait: 1 in production; tests and demos shorten waits.")
    coupon_key: SecretStr = Field(
        SecretStr("dev-only-coupon-key"),
        description="HMAC key of coupon codes (deterministic per customer and step): set it in production.")
    erasure_key: SecretStr = Field(
        SecretStr("dev-only-erasure-key"),
        description="HMAC key of erased customers' suppression entries: set it in production, never change it.")


class ContactSettings(BaseModel):
    """The gateways' contact directory and suppressions (connectors/gateways/directory.py): contact points are
    kept only as keyed hashes, in memory and on ``contacts.suppressions``."""

    key: SecretStr = Field(
        SecretStr("dev-only-contact-key"),
        description="HMAC key of contact points (every SMS and WhatsApp gateway the same): set it in production, "
                    "never change it (contacts.suppressions is keyed with it).")


class GatewaySettings(BaseModel):
    """What every channel gateway has."""

    group_id: str
    provider: str = Field(description="The provider adapter's registry name.")
    rate_per_second: float = Field(50.0, gt=0, description="Sends per second for this sender (token bucket).")
    burst: int = Field(10, ge=1, description="Sends the bucket may save up.")
    breaker_threshold: int = Field(5, ge=1, description="Consecutive provider failures that open the breaker.")
    breaker_cool_off: float = Field(10.0, gt=0, description="Seconds an open breaker waits before a trial call.")
    reconcile_every: float = Field(30.0, gt=0, description="Seconds between lookups of ambiguous sends.")
    reconcile_for: float = Field(1800.0, gt=0, description="Seconds to keep looking before leaving it to people.")
    concurrency: int = Field(64, ge=1, description="Provider calls in flight at once (and pooled connections).")
    batch: int = Field(128, ge=1, description="Commands taken per fetch.")
    max_in_flight: int = Field(256, ge=1, description="Commands taken and not yet finished (bulk stops there).")
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(description="Provider webhooks and /health: the public port.")
    admin_port: int = Field(description="/metrics and /health, bound to http.admin_host (loopback by default).")
    public_base_url: str = Field("", description="How the provider reaches our webhooks (the URL it signs).")


class SmsGatewaySettings(GatewaySettings):
    group_id: str = "switchboard-gateway-sms"
    webhook_port: int = 8098
    admin_port: int = 6067
    public_base_url: str = "http://127.0.0.1:8098"
    provider: str = Field("twilio", description="twilio or vonage")
    from_number: str = "+15005550006"
    # Twilio
    account_sid: str = "AC" + "0" * 32  # the sandbox's well-known account
    auth_token: SecretStr = SecretStr("sandbox-auth-token")
    api_base_url: str = Field("http://127.0.0.1:8099", description="Twilio API base; the sandbox by default.")
    # Vonage
    vonage_api_key: str = "sandbox1"  # the sandbox's
    vonage_api_secret: SecretStr = SecretStr("sandbox-api-secret")
    vonage_signature_secret: SecretStr | None = Field(
        None, description="Signs requests and verifies receipts; required when provider is vonage.")
    vonage_signature_method: Literal["md5hash", "md5", "sha1", "sha256", "sha512"] = Field(
        "md5hash", description="The dashboard's method: MD5 hash (its default) or MD5/SHA1/SHA256/SHA512 HMAC.")
    vonage_receipt_max_age: float = Field(
        300.0, gt=0, description="Seconds a signed receipt's timestamp may be from now (older: a replay, refused).")
    vonage_api_base_url: str = Field("http://127.0.0.1:8092", description="https://rest.nexmo.com in production.")

    @model_validator(mode="after")
    def _vonage_receipts_are_signed(self) -> SmsGatewaySettings:
        """Unsigned Vonage receipts can be forged by anyone who learns the URL: no secret, no Vonage."""
        if self.provider == "vonage" and not (self.vonage_signature_secret and
                                              self.vonage_signature_secret.get_secret_value()):
            raise ValueError("SWITCHBOARD_SMS__VONAGE_SIGNATURE_SECRET is required when SWITCHBOARD_SMS__PROVIDER is "
                             "vonage (the dashboard's signature secret; enable signed webhooks), or receipts could "
                             "be forged")
        return self


class WhatsAppGatewaySettings(GatewaySettings):
    group_id: str = "switchboard-gateway-whatsapp"
    webhook_port: int = 8096
    admin_port: int = 6068
    public_base_url: str = "http://127.0.0.1:8096"
    provider: str = "meta_whatsapp"
    phone_number_id: str = "100000000000001"  # the sandbox's
    access_token: SecretStr = SecretStr("sandbox-access-token")
    app_secret: SecretStr = SecretStr("sandbox-app-secret")
    verify_token: SecretStr = SecretStr("sandbox-verify-token")
    api_base_url: str = Field("http://127.0.0.1:8095", description="https://graph.facebook.com in production.")
    api_version: str = "v21.0"


class EmailGatewaySettings(GatewaySettings):
    group_id: str = "switchboard-gateway-email"
    webhook_port: int = Field(8094, description="/health only (SMTP answers synchronously: no webhooks).")
    admin_port: int = 6069
    provider: str = "smtp"
    host: str = Field("127.0.0.1", description="SMTP server; the sandbox by default.")
    port: int = 1025
    username: str | None = None
    password: SecretStr | None = None
    use_tls: bool = False
    start_tls: bool = False
    sender: str = "Switchboard Shop <shop@example.com>"
    domain: str = Field("switchboard.local", description="Right-hand side of the deterministic Message-ID.")
    connections: int = Field(8, ge=1, description="SMTP sessions kept open and used side by side.")


class SandboxSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8099, description="Twilio-speaking SMS sandbox.")
    whatsapp_port: int = Field(8095, description="WhatsApp Cloud API sandbox.")
    vonage_port: int = Field(8092, description="Vonage-speaking SMS sandbox.")
    smtp_port: int = Field(1025, description="SMTP sandbox.")
    smtp_http_port: int = Field(8093, description="SMTP sandbox's inspection API.")


class HttpSettings(BaseModel):
    """Every HTTP server a process runs: the public one (webhooks, preference pages) and the admin one."""

    header_timeout: float = Field(10.0, gt=0, description="Seconds a client has to send a request's headers (from "
                                                          "connecting, or from the previous response): then dropped.")
    body_timeout: float = Field(10.0, gt=0, description="Seconds a client has to send a request's body once its "
                                                        "headers are in: then 408 and dropped.")
    admin_host: str = Field("127.0.0.1", description="Bind address of every admin server (/metrics, /health, the "
                                                     "worker's faust views); 0.0.0.0 only behind a private network.")


class PreferenceSettings(BaseModel):
    """The customer preference centre: a page reached by a signed, expiring link.

    ``secret`` signs those links. Its default is for development only: set
    ``SWITCHBOARD_PREFERENCES__SECRET`` in production, or anyone who reads this file can forge links.
    """

    host: str = Field("127.0.0.1", description="Bind address (0.0.0.0 in a container).")
    port: int = Field(8090, description="The preference pages and /health.")
    admin_port: int = Field(6070, description="/metrics and /health, bound to http.admin_host.")
    public_base_url: str = Field("http://127.0.0.1:8090",
                                 description="How customers reach the pages; links start with it.")
    secret: SecretStr = Field(SecretStr("dev-only-preference-secret"),
                              description="HMAC key of the links. Set SWITCHBOARD_PREFERENCES__SECRET in production.")
    link_ttl_seconds: int = Field(14 * 24 * 3600, gt=0, description="How long a link stays valid.")
    disclosure_version: str = Field("2026-05",
                                    description="Recorded with every consent change, with the text that was shown.")


# ``SWITCHBOARD_PORTS_FROM=N`` moves a whole local stack: each process family's port is N + its offset. The
# broker's controller listener takes the port after the broker's (deploy/kafka/kafka.sh), hence the gap at 1.
PORT_OFFSETS = {"kafka": 0, "worker_web": 2, "sms_webhooks": 3, "whatsapp_webhooks": 4, "email_webhooks": 5,
                "sandbox_twilio": 6, "sandbox_whatsapp": 7, "sandbox_vonage": 8, "sandbox_smtp": 9,
                "sandbox_smtp_http": 10, "preferences": 11, "sms_admin": 12, "whatsapp_admin": 13, "email_admin": 14,
                "preferences_admin": 15}


def _url(host: str, port: int) -> str:
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"  # a bind-all address is no URL


def _unless_set(section: BaseModel, **derived: object) -> BaseModel:
    """``section`` with the ``derived`` values for the fields nobody set (environment, file or argument)."""
    update = {k: v for k, v in derived.items() if k not in section.model_fields_set}
    if not update:
        return section
    copy = section.model_copy(update=update)
    copy.__pydantic_fields_set__ = set(section.model_fields_set)  # derived stays derived: a later copy derives again
    return copy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", env_nested_delimiter="__", extra="ignore")

    env: Literal["development", "production"] = Field(
        "development", description="SWITCHBOARD_ENV: production refuses to start a process on a development secret "
                                   "(streams/production.py); development warns.")
    kafka: KafkaSettings = KafkaSettings()
    worker: WorkerSettings = WorkerSettings()
    sms: SmsGatewaySettings = SmsGatewaySettings()
    whatsapp: WhatsAppGatewaySettings = WhatsAppGatewaySettings()
    email: EmailGatewaySettings = EmailGatewaySettings()
    sandbox: SandboxSettings = SandboxSettings()
    preferences: PreferenceSettings = PreferenceSettings()
    contacts: ContactSettings = ContactSettings()
    http: HttpSettings = HttpSettings()
    ports_from: int | None = Field(
        None, ge=1, le=65535 - len(PORT_OFFSETS),
        description="SWITCHBOARD_PORTS_FROM: every local port counted from this one (PORT_OFFSETS), unless set.")

    @model_validator(mode="after")
    def _follow_ports(self) -> Settings:
        """Ports from ``ports_from``, then the URLs that name a port from those ports; a value set is kept."""
        if self.ports_from is not None:
            port = {name: self.ports_from + offset for name, offset in PORT_OFFSETS.items()}
            self.kafka = _unless_set(self.kafka, bootstrap_servers=f"127.0.0.1:{port['kafka']}")
            self.worker = _unless_set(self.worker, web_port=port["worker_web"])
            self.sms = _unless_set(self.sms, webhook_port=port["sms_webhooks"], admin_port=port["sms_admin"])
            self.whatsapp = _unless_set(self.whatsapp, webhook_port=port["whatsapp_webhooks"],
                                        admin_port=port["whatsapp_admin"])
            self.email = _unless_set(self.email, webhook_port=port["email_webhooks"], admin_port=port["email_admin"])
            self.sandbox = _unless_set(self.sandbox, port=port["sandbox_twilio"],
                                       whatsapp_port=port["sandbox_whatsapp"], vonage_port=port["sandbox_vonage"],
                                       smtp_port=port["sandbox_smtp"], smtp_http_port=port["sandbox_smtp_http"])
            self.preferences = _unless_set(self.preferences, port=port["preferences"],
                                           admin_port=port["preferences_admin"])
        self.worker = _unless_set(self.worker, web_host=self.http.admin_host)  # faust's web server is its admin one
        box = self.sandbox
        self.sms = _unless_set(self.sms, public_base_url=_url(self.sms.webhook_host, self.sms.webhook_port),
                               api_base_url=_url(box.host, box.port),
                               vonage_api_base_url=_url(box.host, box.vonage_port))
        self.whatsapp = _unless_set(self.whatsapp, api_base_url=_url(box.host, box.whatsapp_port),
                                    public_base_url=_url(self.whatsapp.webhook_host, self.whatsapp.webhook_port))
        self.email = _unless_set(self.email, port=box.smtp_port)
        self.preferences = _unless_set(self.preferences, public_base_url=_url(self.preferences.host,
                                                                              self.preferences.port))
        return self

    def redacted(self) -> dict:
        """The settings with every secret masked: the only form that may be logged."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'
