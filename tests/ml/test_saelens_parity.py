"""Parity with SAELens as the oracle: SAEs of every architecture SAELens registers are built by
SAELens, saved with SAELens' own save method, loaded by Featureboard and compared (fp32, 1e-5).

Runs where ``sae-lens`` is importable (``make parity`` builds .venv-parity for it; ``make test``
runs it after the main suite). Without sae-lens the module skips, except under ``CI=true``, where
a missing oracle is a failure. A new architecture in SAELens' registry fails here by name until
Featureboard loads it.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from app.ml.architectures import REGISTRY
from app.ml.sae import load_sae

pytestmark = pytest.mark.parity
ATOL = 1e-5
D_IN, D_SAE, D_OUT, N_HEADS = 16, 64, 24, 4

try:  # collection needs SAELens' registry to parametrize over it
    from sae_lens.registry import SAE_CLASS_REGISTRY, SAE_TRAINING_CLASS_REGISTRY

    SAELENS_ERROR = None
except ImportError as exc:  # the main environment: no oracle
    SAE_CLASS_REGISTRY, SAE_TRAINING_CLASS_REGISTRY, SAELENS_ERROR = {}, {}, exc

INFERENCE_NAMES = sorted(SAE_CLASS_REGISTRY) or ["<sae-lens not installed>"]
# Training architectures SAELens saves for inference under another name (batchtopk → jumprelu).
TRAINING_ONLY = sorted(set(SAE_TRAINING_CLASS_REGISTRY) - set(SAE_CLASS_REGISTRY)) or ["<sae-lens not installed>"]


@pytest.fixture(scope="module")
def sae_lens():
    if SAELENS_ERROR is not None:
        message = f"sae-lens is not importable ({SAELENS_ERROR}); `make parity` installs it in .venv-parity"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    import sae_lens

    return sae_lens


# Per architecture: variants of cfg fields (beyond d_in/d_sae/metadata) that change encode/decode.
VARIANTS = {
    "standard": [{}, {"apply_b_dec_to_input": False}, {"normalize_activations": "layer_norm"},
                 {"normalize_activations": "constant_norm_rescale"}, {"reshape_activations": "hook_z"}],
    "gated": [{}, {"apply_b_dec_to_input": False}],
    "jumprelu": [{}, {"apply_b_dec_to_input": False, "normalize_activations": "layer_norm"}],
    "topk": [{"k": 5}, {"k": 5, "rescale_acts_by_decoder_norm": True}],
    "abstopk": [{"k": 5}, {"k": 5, "rescale_acts_by_decoder_norm": True, "apply_b_dec_to_input": False}],
    "transcoder": [{"d_out": D_OUT, "apply_b_dec_to_input": False}],
    "skip_transcoder": [{"d_out": D_OUT, "apply_b_dec_to_input": False}],
    "jumprelu_transcoder": [{"d_out": D_OUT, "apply_b_dec_to_input": False}],
    "jumprelu_skip_transcoder": [{"d_out": D_OUT, "apply_b_dec_to_input": False},
                                 {"d_out": D_OUT, "apply_b_dec_to_input": False, "normalize_activations": "layer_norm"}],
    "matching_pursuit": [{"residual_threshold": 0.05}, {"apply_b_dec_to_input": False, "max_iterations": 6,
                                                        "stop_on_duplicate_support": False}],
    "temporal": [{"n_heads": 2, "bottleneck_factor": 4, "kval_topk": 6, "apply_b_dec_to_input": False},
                 {"n_heads": 2, "bottleneck_factor": 8, "n_attn_layers": 2, "sae_diff_type": "relu",
                  "tied_weights": False, "normalize_activations": "constant_scalar_rescale",
                  "activation_normalization_factor": 0.7}],
}
TRAINING_VARIANTS = {
    "batchtopk": [{"k": 5}, {"k": 5, "rescale_acts_by_decoder_norm": False}],
    "matryoshka_batchtopk": [{"k": 5, "matryoshka_widths": [16, D_SAE]}],
}
WHITENED = ["standard", "gated", "jumprelu", "topk"]
MAX_DIFF: dict[str, float] = {}


def _metadata(name: str, variant: dict):
    from sae_lens.saes.sae import SAEMetadata

    if "transcoder" in name:
        return SAEMetadata(model_name="tiny", hook_name="blocks.1.hook_mlp_in", hook_name_out="blocks.1.hook_mlp_out")
    hook = "blocks.1.attn.hook_z" if variant.get("reshape_activations") == "hook_z" else "blocks.1.hook_resid_post"
    return SAEMetadata(model_name="tiny", hook_name=hook, neuronpedia_id="tiny/1-res")


@torch.no_grad()
def _randomize(sae, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for name, p in sae.named_parameters():
        if name == "threshold":
            p.copy_(torch.rand(p.shape, generator=gen) * 0.3)
        else:
            p.copy_(torch.randn(p.shape, generator=gen) * (0.4 if p.ndim > 1 else 0.1))


def _inputs(name: str, variant: dict, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 100)
    if name == "temporal":
        return torch.randn(3, 7, D_IN, generator=gen)
    if variant.get("reshape_activations") == "hook_z":
        return torch.randn(12, N_HEADS, D_IN // N_HEADS, generator=gen)
    return torch.randn(12, D_IN, generator=gen) * 1.5 + 0.2


def _compare(label: str, ours: torch.Tensor, ref: torch.Tensor) -> None:
    ref = ref.reshape(ours.shape)  # SAELens un-flattens hook_z heads; Featureboard keeps them flat
    diff = float((ours.detach().float() - ref.detach().float()).abs().max()) if ref.numel() else 0.0
    MAX_DIFF[label] = max(MAX_DIFF.get(label, 0.0), diff)
    torch.testing.assert_close(ours.detach(), ref.detach(), rtol=0, atol=ATOL, msg=lambda m: f"{label}: {m}")


def _check(label: str, oracle, folder, x: torch.Tensor, check_forward: bool = True):
    ours = load_sae(folder)
    f_ref = oracle.encode(x)
    out_ref = oracle.decode(f_ref)  # SAELens' decode undoes the normalisation of the last encode
    f = ours.encode(x)
    _compare(f"{label} encode", f, f_ref)
    assert (f_ref != 0).any() and (f_ref == 0).any(), f"{label}: degenerate test input"
    undo = ours.normalize(x)[1]
    _compare(f"{label} decode", ours.decode(f_ref, undo), out_ref)
    if check_forward:
        _compare(f"{label} forward", ours(x), oracle(x))
    return ours


def test_featureboard_registers_every_saelens_architecture(sae_lens):
    missing = sorted(set(SAE_CLASS_REGISTRY) - set(REGISTRY))
    untested = sorted((set(SAE_CLASS_REGISTRY) - set(VARIANTS)) | (set(TRAINING_ONLY) - set(TRAINING_VARIANTS)))
    assert not missing, f"SAELens {sae_lens.__version__} registers architectures Featureboard does not load: {missing}"
    assert not untested, f"SAELens architectures without a parity case here: {untested}"


@pytest.mark.parametrize("name", INFERENCE_NAMES)
def test_inference_architecture_matches_saelens(sae_lens, tmp_path, name):
    sae_cls, cfg_cls = SAE_CLASS_REGISTRY[name]
    for i, variant in enumerate(VARIANTS.get(name, [{}])):
        cfg = cfg_cls(d_in=D_IN, d_sae=D_SAE, metadata=_metadata(name, variant), **variant)
        oracle = sae_cls(cfg)
        _randomize(oracle, seed=i)
        oracle.eval()
        folder = tmp_path / f"{name}-{i}"
        oracle.save_model(folder)
        x = _inputs(name, variant, i)
        ours = _check(f"{name}[{i}]", oracle, folder, x)
        assert (ours.architecture, ours.d_in, ours.d_sae, ours.hook_name) == (
            name, D_IN, D_SAE, oracle.cfg.metadata.hook_name)
        assert ours.cfg.hook_name_out == (oracle.cfg.metadata.hook_name_out or oracle.cfg.metadata.hook_name)
        assert ours.cfg.sae_lens_version == sae_lens.__version__  # the real version, kept


@pytest.mark.parametrize("name", TRAINING_ONLY)
def test_training_architecture_saved_for_inference_matches_saelens(sae_lens, tmp_path, name):
    from sae_lens.saes.sae import SAE

    sae_cls, cfg_cls = SAE_TRAINING_CLASS_REGISTRY[name]
    for i, variant in enumerate(TRAINING_VARIANTS.get(name, [{}])):
        trainer = sae_cls(cfg_cls(d_in=D_IN, d_sae=D_SAE, metadata=_metadata(name, variant), **variant))
        _randomize(trainer, seed=i)
        trainer.topk_threshold = torch.tensor(0.25)
        folder = tmp_path / f"{name}-{i}"
        trainer.save_inference_model(folder)
        oracle = SAE.load_from_disk(folder)  # what SAELens itself reads back
        ours = _check(f"{name}[{i}]", oracle, folder, _inputs(name, variant, i))
        assert ours.architecture == oracle.cfg.architecture() == "jumprelu"


@pytest.mark.parametrize("name", WHITENED)
def test_unfolded_covariance_whitening_matches_saelens_fold(sae_lens, tmp_path, name):
    """A checkpoint trained with whitening, saved before the fold: Featureboard folds the stats
    beside it exactly as SAELens' ``fold_activation_whitening`` does at the end of training."""
    from sae_lens.training.activation_scaler import ActivationScaler

    sae_cls, cfg_cls = SAE_CLASS_REGISTRY[name]
    variant = {"k": 5, "rescale_acts_by_decoder_norm": True} if name == "topk" else \
        {"apply_b_dec_to_input": False} if name == "gated" else {}
    cfg = cfg_cls(d_in=D_IN, d_sae=D_SAE, metadata=_metadata(name, variant), normalize_activations="covariance_whitening",
                  **variant)
    unfolded = sae_cls(cfg)
    _randomize(unfolded, seed=7)
    folder = tmp_path / name
    unfolded.save_model(folder)
    gen = torch.Generator().manual_seed(3)
    mixing = torch.randn(D_IN, D_IN, generator=gen) * 0.5 + torch.eye(D_IN)
    batches = iter([torch.randn(256, D_IN, generator=gen) @ mixing + 1.0 for _ in range(4)])
    scaler = ActivationScaler()
    scaler.estimate_whitening(D_IN, batches, n_batches_for_norm_estimate=4)
    scaler.save(str(folder / "activation_scaler.json"))
    folded = copy.deepcopy(unfolded)
    w = scaler.whitening
    folded.fold_activation_whitening(w.mean, w.matrix, w.inverse_matrix)
    ours = _check(f"whitened {name}", folded, folder, torch.randn(12, D_IN, generator=gen) @ mixing + 1.0)
    assert ours.cfg.normalize_activations == "covariance_whitening" and ours.whitening_folded


@pytest.mark.parametrize("name", INFERENCE_NAMES)
def test_featureboard_save_sae_is_read_by_saelens(sae_lens, tmp_path, name):
    """The other direction: what Featureboard writes (save_sae) SAELens loads and encodes the same."""
    from sae_lens.saes.sae import SAE

    from app.ml.sae import SAE as FBSAE
    from app.ml.sae import save_sae
    from app.ml.sae_config import SAEConfig

    variant = VARIANTS[name][0]
    sae_cls, cfg_cls = SAE_CLASS_REGISTRY[name]
    built = sae_cls(cfg_cls(d_in=D_IN, d_sae=D_SAE, metadata=_metadata(name, variant), **variant))
    _randomize(built, seed=11)
    built.save_model(tmp_path / "ref")
    ours = load_sae(tmp_path / "ref")
    copy_ = FBSAE(SAEConfig.from_dict(ours.cfg.to_dict()))
    copy_.load_state_dict(ours.state_dict())
    save_sae(copy_, copy_.cfg, tmp_path / "ours")
    theirs = SAE.load_from_disk(tmp_path / "ours")
    x = _inputs(name, variant, 11)
    _compare(f"{name} save_sae→SAELens encode", theirs.encode(x), ours.encode(x))


def test_report_max_abs_diff(sae_lens):
    """Prints what the parity tier compared (run with -s to see it)."""
    assert MAX_DIFF, "no parity comparison ran"
    names = {label.split("[")[0].removeprefix("whitened ").split()[0] for label in MAX_DIFF}
    print(f"\nSAELens {sae_lens.__version__} parity: {len(names)} architectures, {len(MAX_DIFF)} comparisons, "
          f"max abs diff {max(MAX_DIFF.values()):.2e}")
