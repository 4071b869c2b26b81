"""``PrecomputeRunner(config).run()``: corpus → model → SAEs → accumulators → database.

Flow (see app/precompute/accumulators.py for why there are passes):

1. pass 1 over the corpus in batches of contexts; one LM forward per batch, stopped after the
   deepest hook, serves every SAE; batch ``j`` belongs to rank ``j % world_size``. Each batch's
   nonzero activations and token ids are spilled to ``<checkpoint_dir>/<run>/spill``; accumulator
   state is checkpointed (``torch.save`` to a temp file, then an atomic rename) every
   ``checkpoint_every_s`` seconds. Rerunning the same command continues after the last checkpoint.
2. ranks exchange pass-1 state (exact merge) → final max per feature.
3. pass 2 over the spill: interval bins, histogram, interval samples; exact merge.
4. pass 3 over the spill: per-token activations of the chosen examples and their token ids.
4b. match pass over ``match_tokens`` of the spill (app/precompute/matches.py): every pair of SAEs' activation
   correlations and decoder cosines, each SAE's co-activation; exact over that sample, in feature blocks
   bounded by ``match_memory_mb``.
5. rank 0: weights-only tables, health on a bounded sample, batched write; checkpoints deleted.

Batches have the same shape in every run (single process, sharded or resumed), so activations,
and therefore the database, are bit-identical between those runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from app.ml.demo_build import DemoBuildConfig as _DemoBuildConfig
from app.precompute import corpus as corpus_mod
from app.precompute.accumulators import (
    ExampleActs,
    FeatureAccumulator,
    IntervalAccumulator,
)
from app.precompute.config import PrecomputeConfig, PrecomputeError, source_params
from app.precompute.encode import encode_sparse
from app.precompute.health import corpus_health, sample_health
from app.precompute.matches import write_matches
from app.precompute.rows import example_pairs, feature_chunks
from app.precompute.runtime import (  # noqa: F401 - FAULT_ENV, peak_rss_bytes: re-exported for tests and bench
    FAULT_ENV,
    Background,
    Dist,
    Stream,
    atomic_save,
    atomic_write_text,
    fault,
    format_summary,
    peak_rss_bytes,
    progress_bar,
    written_by_run,
)
from app.precompute.weights import decoder_neighbours, folded_unembedding, logit_tables
from app.store.writer import (
    SourceExistsError,
    database_size,
    delete_source,
    open_database,
    source_status,
    write_source,
)


def hooks_to_capture(saes) -> list[str]:
    """The hook points one LM forward captures for ``saes``, in order (the forward stops after the
    deepest of them): every SAE's input hook."""
    return list(dict.fromkeys(s.hook_name for s in saes))


class PrecomputeRunner:
    """``on_progress(done, total, phase)``, when given, hears each step: phase "pass1", "pass2", "pass3" count
    tokens of the corpus (total: the real number the run reads), "write" counts sources written, then "match"
    (which ran beside the write) reports the tokens it measured."""

    def __init__(self, config: PrecomputeConfig, on_progress=None) -> None:
        self.config = config
        self.on_progress = on_progress or (lambda done, total, phase: None)

    # -- setup ---------------------------------------------------------------------------------------
    def _device(self) -> torch.device:
        from app.ml import resolve_device

        device = resolve_device(self.config.device)
        if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        return device

    def _load(self):
        """SAEs, tokenizer, the corpus stream (started at once), then the model.

        Importing the model's code is most of a run's fixed cost (transformers' GPT-2 module pulls
        in torch._dynamo, torch.distributed.tensor, sympy and scipy: ~3 s of the ~4.5 s before the
        first forward on this machine; the weights take 0.05 s). The corpus is tokenized on the
        other core meanwhile, so those seconds also pay for the first batches' tokens.
        """
        from app.ml import (
            check_sae_fits_model,
            load_language_model,
            load_sae,
            resolve_dtype,
        )
        from app.ml.lm import load_tokenizer

        cfg = self.config
        device = self._device()
        saes = [load_sae(path, device=device, dtype=resolve_dtype(cfg.dtype, device)) for path in cfg.saes]
        tokenizer = load_tokenizer(cfg.model)
        settings = self._context_settings(tokenizer, saes)
        spec = corpus_mod.parse_corpus(cfg.corpus, cfg.text_field)
        stream = Stream(spec, tokenizer, settings, cfg)
        try:
            lm = load_language_model(cfg.model, device=device, dtype=cfg.dtype, tokenizer=tokenizer)
            limit = lm.max_positions
            if limit and settings.context_size > limit:
                raise PrecomputeError(f"context_size {settings.context_size} exceeds the model's {limit} positions")
            for sae in saes:
                check_sae_fits_model(sae, lm)
        except BaseException:
            stream.close()
            raise
        return lm, saes, settings, spec, stream

    def _context_settings(self, tokenizer, saes) -> corpus_mod.ContextSettings:
        cfg = self.config
        sizes = {s.cfg.context_size for s in saes if s.cfg.context_size}
        if cfg.context_size is None and len(sizes) > 1:
            raise PrecomputeError(f"the SAEs were trained with different context sizes {sorted(sizes)}; "
                                  "choose one with --context-size")
        size = cfg.context_size or (sizes.pop() if sizes else corpus_mod.DEFAULT_CONTEXT_SIZE)
        bos = {s.cfg.prepend_bos for s in saes}
        if len(bos) > 1:
            raise PrecomputeError("the SAEs disagree on prepend_bos; precompute them in separate runs")
        return corpus_mod.context_settings(tokenizer, size, bos.pop())

    def _names(self, saes) -> list[str]:
        names = list(self.config.source_names) or [Path(p).name for p in self.config.saes]
        if len(set(names)) != len(names):
            raise PrecomputeError(f"source names {names} are not unique; pass one --name per --sae")
        return names

    def _fingerprint(self, settings, world: int, device: torch.device) -> str:
        """Identity of passes 1-3: a checkpoint or spill of another fingerprint is never reused."""
        cfg = source_params(self.config) | {
            "context": asdict(settings), "world": world, "device_type": device.type,
            "saes": [str(Path(p).resolve()) for p in self.config.saes]}
        return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]

    # -- run -----------------------------------------------------------------------------------------
    def run(self) -> dict:
        started = time.time()
        self._cpu_started = time.process_time()  # CPU time of all threads: the bench's load-proof measure
        lm, saes, settings, spec, stream = self._load()
        try:
            dist = Dist(lm.device)
            try:
                return self._run(lm, saes, settings, spec, stream, dist, started)
            finally:
                dist.close()
        finally:
            stream.close()

    def _run(self, lm, saes, settings, spec, stream: Stream, dist: Dist, started: float) -> dict:
        cfg = self.config
        names = self._names(saes)
        key = corpus_mod.corpus_key(cfg.model, spec, settings)
        engine = None
        run_dir = Path(cfg.checkpoint_dir) / self._fingerprint(settings, dist.world, lm.device)
        if dist.rank == 0:
            engine = open_database(cfg.database_url)
            mine = written_by_run(run_dir)
            existing = [n for n in names if n not in mine and source_status(engine, n) == "complete"]
            if existing and cfg.if_exists == "skip" and len(existing) == len(names):
                decision = "skip"
            elif existing and cfg.if_exists == "error":
                decision = f"exists:{', '.join(existing)}"
            else:
                decision = "run"
        else:
            decision = None
        decision = dist.all_gather(decision)[0]
        if decision == "skip":
            return {"skipped": True, "sources": names}
        if decision.startswith("exists:"):
            raise SourceExistsError(f"source(s) {decision[7:]} already complete in {cfg.database_url}; "
                                    "choose another --name or pass --replace")

        spill_dir = run_dir / f"spill-rank{dist.rank}-of-{dist.world}"
        spill_dir.mkdir(parents=True, exist_ok=True)
        timings = {"load_s": time.time() - started, "load_cpu_s": time.process_time() - self._cpu_started}
        mark = time.time()
        accs = self._pass1(lm, saes, settings, stream, dist, run_dir, spill_dir, timings)
        stats, health_contexts = stream.stats, stream.health_contexts
        timings["pass1_s"], mark = time.time() - mark, time.time()

        merged = []
        for i, acc in enumerate(accs):
            states = dist.all_gather(acc.state_dict())
            total = FeatureAccumulator.from_state_dict(states[0], lm.device)
            for state in states[1:]:
                total.merge(FeatureAccumulator.from_state_dict(state, lm.device))
            merged.append(total)
        spill_files = sorted(spill_dir.glob("b*.pt"))
        intervals = self._pass2(merged, spill_files, settings, dist, lm.device)
        timings["pass2_s"], mark = time.time() - mark, time.time()
        example_acts, token_ids = self._pass3(merged, intervals, spill_files, settings, dist)
        timings["pass3_s"], mark = time.time() - mark, time.time()
        # The match pass (sparse products, mostly numpy/torch kernels) runs beside the write (SQLite and JSON,
        # mostly one core), so the two overlap instead of adding up; its rows are written once both are done.
        matching = Background(lambda: self._pass_match(saes, merged, spill_files, settings, dist))
        if dist.rank != 0:
            matching.result()
            dist.barrier()
            return {"rank": dist.rank}

        summary = self._write(lm, saes, names, merged, intervals, example_acts, token_ids, settings, spec, key,
                              stats, engine, run_dir, health_contexts, timings)
        mark = time.time()
        found = matching.result()
        self.on_progress(found.n_tokens, found.n_tokens, "match")
        timings["match_s"], timings["match_wait_s"], mark = matching.seconds, time.time() - mark, time.time()
        summary["matches"] = write_matches(engine, saes, names, found)
        timings["match_write_s"] = time.time() - mark
        timings["cpu_s"] = time.process_time() - self._cpu_started
        summary["timings"] = {k: round(v, 2) for k, v in timings.items()}
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
        dist.barrier()
        summary.update(seconds=round(time.time() - started, 1), db_bytes=database_size(engine),
                       peak_rss_bytes=peak_rss_bytes(), world_size=dist.world)
        if cfg.progress:
            print(format_summary(summary), flush=True)
        return summary

    # -- pass 1 --------------------------------------------------------------------------------------
    def _pass1(self, lm, saes, settings, stream: Stream, dist: Dist, run_dir: Path, spill_dir: Path, timings: dict):
        from app.ml import capture_activations

        cfg = self.config
        fingerprint = run_dir.name
        ckpt_path = run_dir / f"rank{dist.rank}-of-{dist.world}.pt"
        accs = [FeatureAccumulator(s.d_sae, cfg.top_k, lm.device) for s in saes]
        last_done = -1
        if ckpt_path.exists():
            state = torch.load(ckpt_path, weights_only=False)
            if state.get("fingerprint") == fingerprint:
                accs = [FeatureAccumulator.from_state_dict(s, lm.device) for s in state["accumulators"]]
                last_done = state["last_batch"]
        max_contexts = stream.max_contexts
        hook_names = hooks_to_capture(saes)
        n_pos = settings.context_size
        total_tokens = max_contexts * n_pos
        done_tokens = accs[0].n_contexts * n_pos * dist.world
        bar = progress_bar(total_tokens, min(done_tokens, total_tokens), cfg.progress and dist.rank == 0)
        self.on_progress(min(done_tokens, total_tokens), total_tokens, "pass1")
        last_save, n_saves = time.time(), 0

        def checkpoint(batch_index: int) -> None:
            nonlocal last_save, n_saves
            atomic_save({"fingerprint": fingerprint, "last_batch": batch_index,
                          "accumulators": [a.state_dict() for a in accs]}, ckpt_path)
            last_save, n_saves = time.time(), n_saves + 1
            fault("checkpoint", n_saves)

        batch_index = -1
        batches = stream.batches
        for batch_index, (first, input_ids) in enumerate(batches):
            if batch_index % dist.world != dist.rank or batch_index <= last_done:
                continue
            ordinals = torch.arange(first, first + input_ids.shape[0])
            valid = corpus_mod.valid_mask(input_ids, settings)
            n_valid = int(valid.sum())
            valid_rows = valid.reshape(-1).to(lm.device)
            captured = capture_activations(lm, input_ids.to(lm.device), hook_names=hook_names)
            spilled = []
            for sae, acc in zip(saes, accs):
                x = captured[sae.hook_name]
                sparse = encode_sparse(sae, x.reshape(-1, x.shape[-1]), valid_rows)
                acc.update_sparse(sparse, n_pos, ordinals, n_valid)
                spilled.append({"rows": sparse.rows.cpu(), "features": sparse.features.cpu(),
                                "values": sparse.values.cpu()})
            atomic_save({"ordinals": ordinals, "input_ids": input_ids.to(torch.int32), "saes": spilled},
                         spill_dir / f"b{batch_index:07d}.pt")
            bar.update(input_ids.numel() * dist.world)
            done_tokens += input_ids.numel() * dist.world
            self.on_progress(min(done_tokens, total_tokens), total_tokens, "pass1")
            if time.time() - last_save >= cfg.checkpoint_every_s:
                checkpoint(batch_index)
        bar.close()
        timings["tokenize_s"], timings["tokenize_stall_s"] = batches.produce_s, batches.wait_s
        if batch_index < 0 and stream.stats.contexts == 0:
            raise corpus_mod.CorpusError(f"corpus {cfg.corpus!r} produced no contexts")
        checkpoint(batch_index)
        return accs

    # -- passes 2 and 3 ------------------------------------------------------------------------------
    def _spill(self, files, n_pos: int, phase: str | None):
        """The spilled batches of ``files``; progress is reported under ``phase`` (None: not reported)."""
        total = len(files) * self.config.batch_size * n_pos  # this rank's share (the last batch may be short)
        report = self.on_progress if phase else (lambda done, total, phase: None)
        done = 0
        report(0, total, phase)
        for path in files:
            batch = torch.load(path, weights_only=False)
            yield batch
            done += batch["input_ids"].numel()
            report(min(done, total), total, phase)
        report(done, done, phase)

    def _pass2(self, merged, spill_files, settings, dist: Dist, device) -> list[IntervalAccumulator]:
        cfg = self.config
        intervals = [IntervalAccumulator(acc.max_act, cfg.n_intervals, cfg.examples_per_interval, cfg.hist_bins,
                                         cfg.seed) for acc in merged]
        n_pos = settings.context_size
        for batch in self._spill(spill_files, n_pos, "pass2"):
            for acc_iv, sparse in zip(intervals, batch["saes"]):
                rows = sparse["rows"].long()
                acc_iv.update(batch["ordinals"][rows // n_pos].to(device), (rows % n_pos).to(device),
                              sparse["features"].to(device), sparse["values"].to(device))
        out = []
        for iv in intervals:
            states = dist.all_gather(iv.state_dict())
            total = IntervalAccumulator(iv.max_act, cfg.n_intervals, cfg.examples_per_interval, cfg.hist_bins,
                                        cfg.seed).load_state_dict(states[0])
            for state in states[1:]:
                other = IntervalAccumulator(iv.max_act, cfg.n_intervals, cfg.examples_per_interval, cfg.hist_bins,
                                            cfg.seed).load_state_dict(state)
                total.merge(other)
            out.append(total)
        return out

    def _pass3(self, merged, intervals, spill_files, settings, dist: Dist):
        n_pos = settings.context_size
        collectors, wanted = [], set()
        for acc, iv in zip(merged, intervals):
            features, ordinals = example_pairs(acc, iv)
            collectors.append(ExampleActs(features, ordinals, n_pos))
            wanted.update(ordinals.tolist())
        token_ids: dict[int, bytes] = {}
        for batch in self._spill(spill_files, settings.context_size, "pass3"):
            for ordinal, ids in zip(batch["ordinals"].tolist(), batch["input_ids"]):
                if ordinal in wanted:
                    token_ids[ordinal] = ids.numpy().astype("<i4").tobytes()
            for collector, sparse in zip(collectors, batch["saes"]):
                rows = sparse["rows"].long()
                collector.update(batch["ordinals"][rows // n_pos], rows % n_pos, sparse["features"], sparse["values"])
        gathered = dist.all_gather((token_ids, [c.acts for c in collectors]))
        for other_tokens, other_acts in gathered[1:]:
            token_ids.update(other_tokens)
            for collector, acts in zip(collectors, other_acts):
                collector.acts += acts
        return collectors, token_ids

    def _pass_match(self, saes, merged, spill_files, settings, dist: Dist):
        """Feature matches between the run's SAEs and each one's co-activation (:func:`compute_matches`) over
        ``match_tokens`` of the corpus: whole batches, evenly spaced by global batch index, so any sharding or
        resume picks the same ones."""
        from app.precompute.matches import MAX_SAMPLE_TOKENS, compute_matches

        cfg = self.config
        n_pos = settings.context_size
        index = {int(p.stem[1:]): p for p in spill_files}  # b0000123.pt -> 123
        n_batches = max(dist.all_gather(max(index, default=-1))) + 1
        budget = min(cfg.match_tokens or MAX_SAMPLE_TOKENS, MAX_SAMPLE_TOKENS)
        wanted = max(1, budget // (cfg.batch_size * n_pos))
        chosen = (range(n_batches) if wanted >= n_batches
                  else sorted({k * n_batches // wanted for k in range(wanted)}))
        files = [index[i] for i in chosen if i in index]

        def batches():  # on the match thread, beside the write: its progress is reported when it is joined
            for batch in self._spill(files, n_pos, None):
                valid = corpus_mod.valid_mask(batch["input_ids"].long(), settings)
                yield int(valid.sum()), batch["saes"]

        def all_reduce(tensor):
            parts = dist.all_gather(tensor)
            return sum(parts[1:], parts[0])

        return compute_matches(batches(), [s.d_sae for s in saes], [a.max_act for a in merged],
                               [s.W_dec for s in saes], [s.hook_name for s in saes], cfg.n_matches, cfg.n_coactive,
                               cfg.match_memory_mb << 20, all_reduce if dist.world > 1 else None,
                               corpus_active=[a.n_active for a in merged])

    # -- write ---------------------------------------------------------------------------------------
    def _health_sample(self, settings, health_contexts: list):
        """The stream's first ``health_contexts`` contexts (recorded in pass 1): ``(input_ids, valid)``."""
        if self.config.health_contexts == 0 or not health_contexts:
            return None
        ids = torch.from_numpy(np.stack(health_contexts)).long()
        return ids, corpus_mod.valid_mask(ids, settings)

    def _write(self, lm, saes, names, merged, intervals, example_acts, token_ids, settings, spec, key, stats, engine,
               run_dir, health_contexts, timings: dict):
        from app.ml.sae import residual_directions

        cfg = self.config
        mark = time.perf_counter()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            timings[name] = timings.get(name, 0.0) + now - mark
            mark = now

        w_u = folded_unembedding(lm)
        token_text = vocabulary_text(lm.tokenizer, w_u.shape[1])
        phase("weights_s")
        sample = self._health_sample(settings, health_contexts)
        sources = []
        write_batches, ce_clean = 0, None

        def on_batch(_n: int) -> None:
            nonlocal write_batches
            write_batches += 1
            fault("write", write_batches)

        written = written_by_run(run_dir)
        for n_done, (sae, name, acc, iv, acts) in enumerate(zip(saes, names, merged, intervals, example_acts)):
            self.on_progress(n_done, len(saes), "write")
            if name in written and source_status(engine, name) == "complete":
                continue  # written before this run was interrupted
            health = corpus_health(acc.n_active.cpu(), acc.n_valid_tokens)
            if sample is not None:
                health.update(sample_health(lm, sae, *sample, ce_clean=ce_clean))
                ce_clean = health["ce_loss_clean"]
            phase("health_s")
            logits = logit_tables(residual_directions(sae, lm), w_u, cfg.n_logits, cfg.hist_bins)
            neighbours = decoder_neighbours(sae.W_dec.detach(), cfg.n_neighbours)
            phase("weights_s")
            if cfg.if_exists == "replace":
                delete_source(engine, name)
            row = {"name": name, "model_name": cfg.model, "sae_path": str(Path(sae.path or "").resolve()),
                   "hook_name": sae.hook_name, "architecture": sae.architecture, "d_in": sae.d_in,
                   "d_sae": sae.d_sae, "cfg": _stored_cfg(sae),
                   "corpus": {**spec.describe(), **stats.as_dict(), "corpus_key": key},
                   "params": source_params(cfg) | {"context_size": settings.context_size,
                                                   "prepend_bos": settings.prepend_bos},
                   "health": health, "n_tokens": acc.n_valid_tokens, "n_contexts": acc.n_contexts}
            wanted = set(example_pairs(acc, iv)[1].tolist())
            chunks = feature_chunks(acc, iv, acts, logits, neighbours, token_text)
            source_id = write_source(engine, row, key, {o: token_ids[o] for o in wanted}, chunks, on_batch)
            written.append(name)
            atomic_write_text(run_dir / "written.json", json.dumps(written))
            fault("source", len(written))
            sources.append({"name": name, "id": source_id, "d_sae": sae.d_sae, "alive": health["alive"],
                            "dead": health["dead"], "l0": round(health["l0"], 2),
                            **{k: round(health[k], 4) for k in ("explained_variance", "ce_recovered") if k in health}})
            phase("write_s")
        self.on_progress(len(saes), len(saes), "write")
        n_contexts = merged[0].n_contexts
        return {"tokens": n_contexts * settings.context_size, "valid_tokens": merged[0].n_valid_tokens,
                "contexts": n_contexts, "sources": sources, "corpus": stats.as_dict()}


def _stored_cfg(sae) -> dict:
    """The SAE's cfg.json (v6 layout) plus ``summary`` (app.ml.sae_config.summarize: what the source
    page shows) and ``neuronpedia_id`` at the top level (v6 keeps it under metadata)."""
    summary = sae.summary()
    return {**sae.cfg.to_dict(), "summary": summary, "neuronpedia_id": summary["neuronpedia_id"]}


def vocabulary_text(tokenizer, n: int) -> list[str]:
    """Display text of token ids ``0 .. n-1`` ("" past the tokenizer's vocabulary)."""
    vocab = tokenizer.convert_ids_to_tokens(list(range(n)))
    return [tokenizer.convert_tokens_to_string([t]) if t is not None else "" for t in vocab]


# -- entry points ------------------------------------------------------------------------------------
DEMO_TOKENS = 1_000_000  # more than the held-out slice holds (343,552 tokens): the demo uses all of it
# The demo's hooks and SAE folders (= source names), as its build makes them: 1,024 features on each hook, and
# 4,096 more on blocks.1 so matches across widths (one feature splitting into several) show as well as across layers.
DEMO_HOOKS = _DemoBuildConfig.hook_names
DEMO_SAES = tuple(name for name, _, _ in _DemoBuildConfig().sae_specs())


def demo_corpus_tokens(model_dir: str | Path, n_tokens: int, context_size: int = 128) -> int:
    """Tokens the demo's precompute really reads: ``n_tokens`` or the whole held-out slice when that is smaller
    (counted by tokenizing it, about 1 s), so a progress bar's total and ETA are true."""
    from app.ml.lm import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    settings = corpus_mod.context_settings(tokenizer, context_size, prepend_bos=True)
    limit = max(1, n_tokens // context_size)
    n = sum(1 for _ in corpus_mod.iter_contexts(corpus_mod.parse_corpus("demo"), tokenizer, settings,
                                                max_contexts=limit))
    return n * context_size


def precompute_demo(database_url: str, data_dir: str | Path, n_tokens: int = DEMO_TOKENS,
                    artifacts_dir: str | Path | None = None, progress: bool = True, on_progress=None) -> dict:
    """Precompute the shipped demo (model + its SAEs, ``DEMO_SAES``, on the held-out speeches) into ``database_url``.

    Idempotent: when every source is already complete it returns ``{"skipped": True, ...}``.
    Checkpoints go to ``<data_dir>/precompute``. ``on_progress`` as for :class:`PrecomputeRunner`.
    Returns :meth:`PrecomputeRunner.run`'s summary.
    """
    from app.paths import DEMO_ARTIFACTS_DIR

    root = Path(artifacts_dir) if artifacts_dir is not None else DEMO_ARTIFACTS_DIR
    config = PrecomputeConfig(
        model=str(root / "model"), saes=tuple(str(root / "saes" / name) for name in DEMO_SAES), corpus="demo",
        n_tokens=demo_corpus_tokens(root / "model", n_tokens), database_url=database_url,
        checkpoint_dir=str(Path(data_dir) / "precompute"), device="cpu", if_exists="skip", progress=progress,
        checkpoint_every_s=30.0)
    return PrecomputeRunner(config, on_progress=on_progress).run()
