"""Bridges to real federated-learning frameworks: they record what a real run's observers saw.

- :mod:`leakage.integrations.flower`: Flower (``pip install 'leakage[flower]'``); a
  recording strategy for the server, a client mod for the participants, and a helper
  that runs and records a Flower simulation.

Recordings are read back with :func:`leakage.recording.read_recording`. Nothing here is
imported with :mod:`leakage`; each bridge imports its framework when it is imported.
"""
