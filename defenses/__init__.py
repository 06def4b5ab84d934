"""Defenses: aggregation schemes and privacy mechanisms, registered in ``leakage.aggregation.SCHEMES``."""

__all__: list[str] = []
