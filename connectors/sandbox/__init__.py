"""Local fake providers that speak the real wire protocols, for tests and demos.

Production adapters talk to them unchanged by pointing ``base_url`` at them. Never
deploy these: they keep every message (numbers and bodies) in memory.
"""
