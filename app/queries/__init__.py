"""Every SQL read and write used by pages and the API, one module per resource. No HTTP, no templates, no torch.

Import the module you need (`from app.queries import sources`); the names below are re-exported for
the common reads.
"""

from app.queries.sources import list_source_summaries, source_summary  # noqa: F401
