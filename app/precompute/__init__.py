"""Precompute: corpus → model → SAE → streaming accumulators → database (see runner.py).

Importing this package is cheap; torch-heavy modules are imported by their users.
"""
