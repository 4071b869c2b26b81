"""Machine-drafted labels and label scores (issue 8), offline first.

- data.py      a feature's stored examples as decoded token windows; the explain / held-out split; negatives
- drafts.py    offline drafters: output-centric (top logits) and input-centric (peak tokens, context, quotes)
- scorers.py   embedding (ROC AUC), detection and fuzzing (balanced accuracy, need an LLM)
- llm.py       OpenAI-compatible chat client; prompts.py builds prompts and parses replies
- runner.py    AutolabelRunner(config).run(): all alive features, bounded concurrency, progress, resume
- background.py  drafts for every alive feature at start and background scoring (FEATUREBOARD_AUTOLABEL), the
                 demo's shipped scores
- review.py    review queue (accept / edit / reject), needs-review list, per-feature scores, semantic search

Nothing heavy is imported at import time.
"""
