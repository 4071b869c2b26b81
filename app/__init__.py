"""Featureboard: a self-hosted dashboard for sparse autoencoder features."""

__version__ = "0.1.0"
