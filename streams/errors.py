"""Errors of the decision service.

    SwitchboardError
     ├── ConfigurationError     settings that cannot work (unknown provider, bad port)
     │    └── DevelopmentSecretError(settings)  production mode with a development secret in use
     ├── TemplateError          a template that is missing or fails to render
     │    └── UnknownTemplateError
     └── StateError             customer state that cannot be read (a corrupt table value)
          └── KeyMismatchError  a record keyed by something other than its customer id
"""


class SwitchboardError(Exception):
    """Root of every error raised by :mod:`streams`."""


class ConfigurationError(SwitchboardError):
    """Settings that cannot work."""


class DevelopmentSecretError(ConfigurationError):
    """``SWITCHBOARD_ENV=production`` and a process would use a development secret; ``settings`` names each
    (environment variable names, never values)."""

    def __init__(self, settings: list[str]) -> None:
        self.settings = list(settings)
        super().__init__("production mode refuses development secrets: set " + ", ".join(self.settings))


class TemplateError(SwitchboardError):
    """A template that cannot be rendered."""


class UnknownTemplateError(TemplateError):
    """No template of that name."""


class UnknownEventTypeError(SwitchboardError):
    """A storefront event of the schema's ``unknown`` type: a kind this worker's schema does not know yet (a
    newer producer's), dead-lettered so it can be replayed once the worker knows it."""


class StateError(SwitchboardError):
    """Customer state could not be read."""


class KeyMismatchError(StateError):
    """A record keyed by something other than its customer id would break the co-partitioned join."""
