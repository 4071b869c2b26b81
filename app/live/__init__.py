"""Live inference for the web app, without torch: input limits and tokenization (text), off-event-loop
model calls serialised per device (service), and the data functions of the live pages (pages).
The torch side is app/ml/live.py."""
