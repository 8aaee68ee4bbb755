"""Channel gateways: Kafka consumers that send commands through provider adapters."""
