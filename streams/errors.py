"""Errors of the decision service.

    SwitchboardError
     ├── ConfigurationError     settings that cannot work (unknown provider, bad port)
     ├── TemplateError          a template that is missing or fails to render
     │    └── UnknownTemplateError
     └── StateError             customer state that cannot be read (a corrupt table value)
          └── KeyMismatchError  a record keyed by something other than its customer id
"""


class SwitchboardError(Exception):
    """Root of every error raised by :mod:`streams`."""


class ConfigurationError(SwitchboardError):
    """Settings that cannot work."""


class TemplateError(SwitchboardError):
    """A template that cannot be rendered."""


class UnknownTemplateError(TemplateError):
    """No template of that name."""


class StateError(SwitchboardError):
    """Customer state could not be read."""


class KeyMismatchError(StateError):
    """A record keyed by something other than its customer id would break the co-partitioned join."""
