"""Steering service (issue 6), no torch here: request validation (spec), run storage, lookup and execution
off the event loop (service), server-sent events and disconnects (stream), and per-client rate limits
(clients). The model work itself is app/ml/steering.py.
"""
