"""``topk_transcoder`` / ``topk_skip_transcoder``: a transcoder (see :mod:`.transcoder`) whose
features are the per-token top-k of ``ReLU(x @ W_enc + b_enc)``, as EleutherAI sparsify trains
them (``transcode: true``). Not SAELens architectures; sparsify checkpoints use them."""

from app.ml.architectures.base import register
from app.ml.architectures.topk import TopKFamily
from app.ml.architectures.transcoder import TranscoderFamily


@register
class TopKTranscoder(TranscoderFamily, TopKFamily):
    name = "topk_transcoder"


@register
class TopKSkipTranscoder(TranscoderFamily, TopKFamily):
    name = "topk_skip_transcoder"
    skip = True
