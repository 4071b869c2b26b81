"""``jumprelu_transcoder`` / ``jumprelu_skip_transcoder`` (Gemma Scope 2 transcoders): a
transcoder (see :mod:`.transcoder`) whose features are JumpReLU'd (see :mod:`.jumprelu`)."""

from app.ml.architectures.base import register
from app.ml.architectures.jumprelu import JumpReLUMixin
from app.ml.architectures.transcoder import TranscoderFamily


@register
class JumpReLUTranscoder(JumpReLUMixin, TranscoderFamily):
    name = "jumprelu_transcoder"


@register
class JumpReLUSkipTranscoder(JumpReLUMixin, TranscoderFamily):
    name = "jumprelu_skip_transcoder"
    skip = True
