"""``temporal`` (Temporal SAE, arXiv 2511.01836): each token's code splits into a part predicted
from earlier tokens by causal attention over codes, and a sparse "novel" part; the novel codes
are the features. Positional: encode reads whole sequences ``[batch, pos, d_in]`` (a 2-D
``[pos, d_in]`` input is one sequence).

Per attention layer ``l`` (weights ``attn_layers.l.{k_ctx,q_target,v_ctx,c_proj}.{weight,bias}``,
attention over codes of width d_sae)::

    z_in  = ReLU(r * λ @ W_enc)                  λ = 1 / (4 d_in); W_enc = W_dec.T when tied
    z_ctx = z_in shifted one position right (zeros at 0)
    p     = ReLU(c_proj(causal_attention(q_target(z_in), k_ctx(z_ctx), v_ctx(z_ctx))))
    s     = <p @ W_dec, r> / (‖p @ W_dec‖ + 1e-6)²;  z_pred += s p;  r -= s (p @ W_dec)
    f     = ReLU(r * λ @ W_enc), top-kval_topk when sae_diff_type = topk

``decode(f)`` reconstructs the novel part only; ``forward`` adds the predicted codes.
"""

import torch
import torch.nn.functional as F

from app.ml.architectures.base import Architecture, register

_ATTN_SHAPES = ("k_ctx", "q_target", "v_ctx", "c_proj")


@register
class Temporal(Architecture):
    name = "temporal"
    positional = True
    cfg_fields = {"n_heads": 8, "n_attn_layers": 1, "bottleneck_factor": 64, "sae_diff_type": "topk",
                  "kval_topk": None, "tied_weights": True, "activation_normalization_factor": 1.0}
    normalizations = ("none", "constant_norm_rescale", "layer_norm", "expected_average_only_in",
                      "constant_scalar_rescale")

    def param_shapes(self, cfg):
        p = cfg.arch_cfg
        shapes = {"W_dec": (cfg.d_sae, cfg.d_in), "b_dec": (cfg.d_in,)}
        if not p["tied_weights"]:
            shapes["W_enc"] = (cfg.d_in, cfg.d_sae)
        n_embd = cfg.d_sae // p["bottleneck_factor"]
        widths = {"k_ctx": n_embd, "q_target": n_embd, "v_ctx": cfg.d_sae, "c_proj": cfg.d_sae}
        for layer in range(p["n_attn_layers"]):
            for proj in _ATTN_SHAPES:
                shapes[f"attn_layers.{layer}.{proj}.weight"] = (widths[proj], cfg.d_sae)
                shapes[f"attn_layers.{layer}.{proj}.bias"] = (widths[proj],)
        return shapes

    def check(self, cfg, bad):
        p = cfg.arch_cfg
        for name in ("n_heads", "n_attn_layers", "bottleneck_factor"):
            if isinstance(p[name], bool) or not isinstance(p[name], int) or p[name] < 1:
                raise bad(name, "a positive integer", p[name])
        if cfg.d_sae % (p["bottleneck_factor"] * p["n_heads"]):
            raise bad("d_sae", f"a multiple of bottleneck_factor × n_heads = {p['bottleneck_factor'] * p['n_heads']}",
                      cfg.d_sae)
        if p["sae_diff_type"] not in ("relu", "topk"):
            raise bad("sae_diff_type", "relu or topk", p["sae_diff_type"])
        if p["kval_topk"] is not None and (isinstance(p["kval_topk"], bool) or not isinstance(p["kval_topk"], int)
                                           or not 1 <= p["kval_topk"] <= cfg.d_sae):
            raise bad("kval_topk", f"null or an integer in 1..d_sae={cfg.d_sae}", p["kval_topk"])

    def _w_enc(self, sae):
        return sae.W_dec.T if sae.cfg.arch_cfg["tied_weights"] else sae.W_enc

    def _attention(self, sae, layer: int, z_ctx: torch.Tensor, z_in: torch.Tensor) -> torch.Tensor:
        def proj(name, t):
            return F.linear(t, sae.get_parameter(f"attn_layers.{layer}.{name}.weight"),
                            sae.get_parameter(f"attn_layers.{layer}.{name}.bias"))

        heads = sae.cfg.arch_cfg["n_heads"]
        B, T, _ = z_ctx.shape

        def split(t):
            return t.view(B, T, heads, t.shape[-1] // heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(proj("q_target", z_in)), split(proj("k_ctx", z_ctx)),
                                             split(proj("v_ctx", z_ctx)), is_causal=True)
        return proj("c_proj", out.transpose(1, 2).reshape(B, T, -1))

    def encode_with_predictions(self, sae, x):
        """``x: [batch, pos, d_in]`` → (novel codes f, predicted codes), both ``[batch, pos, d_sae]``."""
        squeeze = x.ndim == 2
        x = x[None] if squeeze else x
        w_enc, lam, eps = self._w_enc(sae), 1 / (4 * sae.cfg.d_in), 1e-6
        residual = x
        z_pred = torch.zeros(*x.shape[:-1], sae.cfg.d_sae, dtype=x.dtype, device=x.device)
        for layer in range(sae.cfg.arch_cfg["n_attn_layers"]):
            z_in = torch.relu((residual * lam) @ w_enc)
            z_ctx = torch.cat((torch.zeros_like(z_in[:, :1]), z_in[:, :-1]), dim=1)
            p = torch.relu(self._attention(sae, layer, z_ctx, z_in))
            dz = p @ sae.W_dec
            scale = (dz * residual).sum(-1, keepdim=True) / (dz.norm(dim=-1, keepdim=True) + eps).pow(2)
            z_pred = z_pred + p * scale
            residual = residual - scale * dz
        f = torch.relu((residual * lam) @ w_enc)
        kval = sae.cfg.arch_cfg["kval_topk"]
        if sae.cfg.arch_cfg["sae_diff_type"] == "topk" and kval is not None:
            f = f * torch.zeros_like(f).scatter(-1, f.topk(kval, dim=-1).indices, 1.0)
        return (f[0], z_pred[0]) if squeeze else (f, z_pred)

    def encode(self, sae, x):
        return self.encode_with_predictions(sae, x)[0]

    def _adds_b_dec(self, sae) -> bool:
        return not sae.cfg.arch_cfg["tied_weights"] or sae.cfg.apply_b_dec_to_input

    def decode(self, sae, f):
        out = f @ sae.W_dec
        return out + sae.b_dec if self._adds_b_dec(sae) else out

    def forward(self, sae, x):
        x_in, undo = sae.normalize(x)
        if sae.cfg.apply_b_dec_to_input:
            x_in = x_in - sae.b_dec
        f, z_pred = self.encode_with_predictions(sae, x_in)
        return sae.undo_normalization(self.decode(sae, f + z_pred), undo)

    def fold_decoder_norm(self, sae):
        raise NotImplementedError("temporal SAEs cannot fold their decoder norms")
