"""Attacks on what federated-learning observers see."""

__all__: list[str] = []
