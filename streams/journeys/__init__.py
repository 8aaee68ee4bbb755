"""Journeys: definitions as data (YAML), a pure engine, coupons and A/B assignment."""
