"""Errors of the contract package.

    SchemaError
     ├── DecodeError        bytes that are not a valid record of the expected schema
     ├── EncodeError        a model that its schema cannot hold
     └── UnknownTopicError  a name missing from the topic catalog
"""


class SchemaError(Exception):
    """Root of every error raised by :mod:`schemas`."""


class DecodeError(SchemaError):
    """Raw bytes could not be decoded into the expected record."""


class EncodeError(SchemaError):
    """A model could not be encoded with its schema."""


class UnknownTopicError(SchemaError, KeyError):
    """A topic name is not in the catalog."""
