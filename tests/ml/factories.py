"""Seeded tiny models and SAE folders for tests; nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from app.ml.sae import param_shapes, save_sae
from app.ml.sae_config import SAEConfig

D_MODEL = 32
N_LAYERS = 3
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Sparse autoencoders find features in language model activations.",
    "A feature fires on some tokens and stays silent on the others.",
    "Numbers like 1, 2, 3 and 42 appear in text; so do names like Ada and Alan.",
    "def add(a, b):\n    return a + b\n",
]
_SPECIALS = {
    "gpt2": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"},
    "neox": {"eos_token": "<|endoftext|>"},  # no BOS: exercises the eos fallback
    "llama": {"bos_token": "<s>", "eos_token": "</s>"},
    "gemma2": {"bos_token": "<bos>", "eos_token": "<eos>"},
}


def build_tokenizer(kind: str = "gpt2", vocab_size: int = 300, texts: list[str] | None = None,
                    folder: Path | None = None):
    """The one tokenizer builder of the tests: a byte-level BPE trained in milliseconds on ``texts`` (default
    SENTENCES), wrapped as a PreTrainedTokenizerFast with the special tokens of model family ``kind``. With
    ``folder`` it is also saved there (tokenizer.json + tokenizer_config.json, as a model folder has them)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = _SPECIALS[kind]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=sorted(set(specials.values())),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts or SENTENCES, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, **specials)
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        wrapped.save_pretrained(folder)
    return wrapped


def encode(folder: Path, text: str) -> list[int]:
    """Token ids of ``text`` under the tokenizer saved in ``folder`` (no special tokens added)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(Path(folder) / "tokenizer.json")).encode(text).ids


def _config(kind: str, vocab_size: int, n_layers: int, d_model: int, tokenizer):
    from transformers import Gemma2Config, GPT2Config, GPTNeoXConfig, LlamaConfig

    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    if kind == "gpt2":
        return GPT2Config(vocab_size=vocab_size, n_positions=64, n_embd=d_model, n_layer=n_layers,
                          n_head=2, **ids)
    if kind == "neox":
        return GPTNeoXConfig(vocab_size=vocab_size, hidden_size=d_model, num_hidden_layers=n_layers,
                             num_attention_heads=2, intermediate_size=2 * d_model,
                             max_position_embeddings=64, **ids)
    if kind == "llama":
        return LlamaConfig(vocab_size=vocab_size, hidden_size=d_model, num_hidden_layers=n_layers,
                           num_attention_heads=2, num_key_value_heads=1, intermediate_size=2 * d_model,
                           max_position_embeddings=64, **ids)
    if kind == "gemma2":
        return Gemma2Config(vocab_size=vocab_size, hidden_size=d_model, num_hidden_layers=n_layers,
                            num_attention_heads=2, num_key_value_heads=1, head_dim=d_model // 2,
                            intermediate_size=2 * d_model, max_position_embeddings=64, **ids)
    raise ValueError(f"kind must be gpt2, neox, llama or gemma2, got {kind!r}")


def build_tiny_model(tmp_path: Path, kind: str = "gpt2", seed: int = 0, n_layers: int = N_LAYERS,
                     d_model: int = D_MODEL) -> Path:
    """Save a seeded, randomly initialised causal LM + tokenizer into ``tmp_path/kind``."""
    from transformers import AutoModelForCausalLM

    folder = Path(tmp_path) / f"tiny-{kind}"
    tokenizer = build_tokenizer(kind)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(kind, len(tokenizer), n_layers, d_model, tokenizer))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_sae_cfg(**overrides: Any) -> SAEConfig:
    """A valid standard SAE config on blocks.1.hook_resid_post of the tiny model."""
    values: dict[str, Any] = dict(
        architecture="standard", d_in=D_MODEL, d_sae=64, hook_name="blocks.1.hook_resid_post",
        hook_layer=1, model_name="tiny-gpt2", context_size=16, prepend_bos=True,
    )
    values.update(overrides)
    if values["architecture"] == "topk":
        values.setdefault("k", 4)
    return SAEConfig(**values)


def random_sae_tensors(cfg: SAEConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights scaled so that roughly half of the features fire on unit-scale inputs."""
    gen = torch.Generator().manual_seed(seed)
    scale = {"W_enc": cfg.d_in ** -0.5, "W_dec": 0.2, "threshold": 0.3, "r_mag": 0.2}
    tensors = {}
    for name, shape in param_shapes(cfg).items():
        if name == "threshold":
            tensors[name] = torch.rand(shape, generator=gen) * scale[name]
        else:
            tensors[name] = torch.randn(shape, generator=gen) * scale.get(name, 0.1)
    return tensors


def legacy_cfg_dict(cfg: SAEConfig) -> dict[str, Any]:
    """The flat pre-v6 SAELens layout for ``cfg`` (architecture omitted for standard)."""
    out: dict[str, Any] = {
        "model_name": cfg.model_name, "hook_point": cfg.hook_name, "hook_point_layer": cfg.hook_layer,
        "hook_point_head_index": None, "d_in": cfg.d_in, "d_sae": cfg.d_sae, "dtype": "torch.float32",
        "device": "cpu", "context_size": cfg.context_size, "prepend_bos": cfg.prepend_bos,
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input, "finetuning_scaling_factor": False,
        "sae_lens_training_version": "3.13.0", "activation_fn_str": "relu",
        "normalize_activations": (cfg.normalize_activations == "expected_average_only_in"
                                  if cfg.normalize_activations in ("none", "expected_average_only_in")
                                  else cfg.normalize_activations),
    }
    if cfg.norm_scaling_factor is not None:
        out["norm_scaling_factor"] = cfg.norm_scaling_factor
    if cfg.architecture == "topk":
        out.update(architecture="standard", activation_fn_str="topk", activation_fn_kwargs={"k": cfg.k})
    elif cfg.architecture != "standard":
        out["architecture"] = cfg.architecture
    return out


def build_sae_folder(tmp_path: Path, architecture: str = "standard", generation: str = "v6",
                     seed: int = 0, sparsity: bool = True, name: str | None = None,
                     **overrides: Any) -> Path:
    """Write an SAE folder with random weights in the v6 or legacy cfg.json layout."""
    cfg = build_sae_cfg(architecture=architecture, **overrides)
    folder = Path(tmp_path) / (name or f"sae-{architecture}-{generation}-{seed}")
    log_density = None
    if sparsity:
        gen = torch.Generator().manual_seed(seed + 1)
        log_density = -torch.rand(cfg.d_sae, generator=gen) * 4
    save_sae(random_sae_tensors(cfg, seed), cfg, folder, sparsity=log_density)
    if generation == "legacy":
        (folder / "cfg.json").write_text(json.dumps(legacy_cfg_dict(cfg)))
    elif generation != "v6":
        raise ValueError(f"generation must be v6 or legacy, got {generation!r}")
    return folder
