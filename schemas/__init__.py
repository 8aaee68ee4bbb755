"""The contract: Avro schemas (``avro/*.avsc``), their pydantic mirrors, the topic catalog and the codec.

This package imports nothing else of Switchboard's; ``streams`` and ``connectors`` import it.
"""
