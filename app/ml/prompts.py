"""Built-in neutral prompts: text with no topic of its own, on which steering's effects are measured (the
calibrated default strength, output evidence, the steering report card). Plain data, no torch, so pages can
show and edit them."""

NEUTRAL_PROMPTS: tuple[str, ...] = (
    "The",
    "It is",
    "In the last year,",
    "We have",
    "I",
    "This is a",
)
