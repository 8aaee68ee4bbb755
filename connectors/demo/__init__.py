"""``switchboard demo`` and ``switchboard simulate``: the pipeline shown end to end on a real broker."""
