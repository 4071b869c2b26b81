"""``transcoder`` / ``skip_transcoder``: read at ``hook_name``, reconstruct at ``hook_name_out``::

    f = ReLU(x @ W_enc + b_enc)              x: [..., d_in] at hook_name
    decode(f) = f @ W_dec + b_dec            [..., d_out] at hook_name_out
    forward(x) = decode(f) (+ x @ W_skip.T for skip_transcoder; W_skip: [d_out, d_in])

As in SAELens, ``b_dec`` (width d_out) is never subtracted from the input, and decode does not
undo an input normalisation (the output lives at another hook). ``decode`` alone never includes
the skip term: it needs ``x``.
"""

from app.ml.architectures.base import Architecture, register


class TranscoderFamily(Architecture):
    transcoder = True
    subtracts_b_dec = False
    undoes_normalization = False
    normalizations = Architecture.UNWHITENED

    def param_shapes(self, cfg):
        shapes = super().param_shapes(cfg)
        return {**shapes, "W_skip": (cfg.d_out, cfg.d_in)} if self.skip else shapes

    def check(self, cfg, bad):
        if cfg.apply_b_dec_to_input:
            raise bad("apply_b_dec_to_input", f"false for architecture={self.name}", True)


@register
class Transcoder(TranscoderFamily):
    name = "transcoder"


@register
class SkipTranscoder(TranscoderFamily):
    name = "skip_transcoder"
    skip = True
