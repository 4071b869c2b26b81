"""Collaborative labeling: accounts and auth (security, auth), write rate limits, label logic (service),
JSONL / Neuronpedia export and import (io), and the `users` / `labels` CLI functions (cli)."""
