"""Output evidence over the fixture world: the precompute stage (resumable, checked against a direct recompute),
the CLI, and the source and feature pages that show it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bs4 import BeautifulSoup
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.orm import Session

from app.cli import main as cli_main
from app.errors import NotFound
from app.ml.bundle import load_bundle
from app.ml.output_evidence import ablation_effects
from app.precompute.output import OutputEvidenceConfig, OutputEvidenceRunner
from app.store import output as q
from app.store.models import FeatureOutput, Source


@pytest.fixture(scope="module")
def bundle(world):
    return load_bundle(world.model, world.saes, device="cpu")


def _rows(url, source):
    with Session(create_engine(url)) as session:
        sid = session.scalar(select(Source.id).where(Source.name == source))
        return {r.feature_index: r for r in session.scalars(select(FeatureOutput).where(FeatureOutput.source_id == sid))}


def test_every_feature_gets_a_row_and_a_rerun_does_only_what_is_missing(world, world_db_url, bundle):
    cfg = OutputEvidenceConfig(database_url=world_db_url, sources=("world-l1", "world-l2"), n_examples=4,
                               chunk=16, progress=False, prompts=("The", "A fox"))
    done = OutputEvidenceRunner(cfg, bundle=bundle).run()
    d_sae = {name: bundle.saes[name].cfg.d_sae for name in ("world-l1", "world-l2")}
    assert {n: r["written"] for n, r in done.items()} == d_sae
    rows = _rows(world_db_url, "world-l1")
    assert sorted(rows) == list(range(d_sae["world-l1"]))
    alive = [i for i in world.alive["world-l1"] if rows[i].n_positions > 0]
    assert alive and all(rows[i].output_score == rows[i].kl for i in alive)
    assert all(len(rows[i].promoted) == 10 for i in world.alive["world-l1"])

    with Session(create_engine(world_db_url)) as session:  # as if the run had stopped after a few chunks
        session.execute(delete(FeatureOutput).where(FeatureOutput.feature_index >= 40))
        session.commit()
    again = OutputEvidenceRunner(cfg, bundle=bundle).run()
    assert again["world-l1"]["written"] == d_sae["world-l1"] - 40 and again["world-l1"]["skipped"] == 40
    assert _rows(world_db_url, "world-l1")[alive[-1]].kl == pytest.approx(rows[alive[-1]].kl, abs=1e-6)


def test_stored_ablation_matches_a_direct_recompute_on_the_top_examples(world, world_db_url, bundle):
    cfg = OutputEvidenceConfig(database_url=world_db_url, sources=("world-l1",), n_examples=3, progress=False)
    OutputEvidenceRunner(cfg, bundle=bundle).run()
    rows = _rows(world_db_url, "world-l1")
    feature = max(world.alive["world-l1"], key=lambda i: rows[i].n_positions)
    with Session(create_engine(world_db_url)) as session:
        sid = session.scalar(select(Source.id).where(Source.name == "world-l1"))
        blobs = q.top_contexts(session, sid, [feature], 3)[feature]
    lengths = [len(t) for t, _ in blobs]
    common = max(set(lengths), key=lengths.count)
    ids = torch.tensor(np.stack([np.frombuffer(t, dtype="<i4") for t, _ in blobs if len(t) == common]).astype(np.int64))
    direct = ablation_effects(bundle.lm, bundle.saes["world-l1"], feature, ids)  # whole contexts, no shortcut
    assert rows[feature].n_examples == ids.shape[0]
    assert rows[feature].n_positions == direct["n_positions"] > 0
    assert rows[feature].kl == pytest.approx(direct["kl"], rel=1e-4, abs=1e-7)
    assert rows[feature].delta_loss == pytest.approx(direct["delta_loss"], rel=1e-4, abs=1e-7)


def test_unknown_source_is_a_clear_error(world_db_url, bundle):
    cfg = OutputEvidenceConfig(database_url=world_db_url, sources=("nope",), progress=False)
    with pytest.raises(NotFound, match="no source named 'nope'"):
        OutputEvidenceRunner(cfg, bundle=bundle).run()


def test_cli_writes_evidence_and_resumes(world_db_url, capsys):
    args = ["output-evidence", "--database-url", world_db_url, "--source", "world-l1", "--examples", "2",
            "--no-progress"]
    assert cli_main(args) == 0
    assert "world-l1: 64 features written, 0 already had evidence" in capsys.readouterr().out
    assert cli_main(args) == 0
    assert "world-l1: 0 features written, 64 already had evidence" in capsys.readouterr().out
    assert cli_main(["output-evidence", "--database-url", world_db_url, "--source", "nope", "--no-progress"]) == 2


def test_source_page_sorts_and_filters_on_the_output_score(world_db_url, bundle, make_app_client):
    OutputEvidenceRunner(OutputEvidenceConfig(database_url=world_db_url, sources=("world-l1",), n_examples=3,
                                              progress=False), bundle=bundle).run()
    rows = _rows(world_db_url, "world-l1")
    scored = sorted((r.output_score for r in rows.values() if r.output_score is not None), reverse=True)
    client = make_app_client(database_url=world_db_url)
    api = client.get("/api/v1/sources/world-l1/features?sort=output&order=desc&per_page=500").json()
    values = [f["output_score"] for f in api["data"]]
    assert values[:len(scored)] == pytest.approx(scored)
    assert all(v is None for v in values[len(scored):])  # features without a score come last
    cut = scored[len(scored) // 2]
    filtered = client.get(f"/api/v1/sources/world-l1/features?min_output={cut}&per_page=500").json()
    assert filtered["count"] == sum(s >= cut for s in scored) and filtered["min_output"] == cut
    page = BeautifulSoup(client.get(f"/sources/world-l1?sort=output&order=desc&min_output={cut}").text, "html.parser")
    cells = [float(td["data-score"]) for td in page.select("table.features td.output-score")]
    assert cells == pytest.approx(sorted(cells, reverse=True)) and min(cells) >= cut
    assert page.select_one("input[name=min_output]")["value"] == str(cut)
    assert client.get("/api/v1/sources/world-l1/features?min_output=lots").status_code == 400

    top = api["data"][0]["index"]
    feature = BeautifulSoup(client.get(f"/sources/world-l1/features/{top}").text, "html.parser")
    assert float(feature.select_one(".output-evidence .output-score").text) == pytest.approx(scored[0], abs=1e-3)
    assert len(feature.select(".output-evidence table.promoted tr")) == 10
    assert client.get(f"/api/v1/sources/world-l1/features/{top}").json()["output"]["kl"] == pytest.approx(scored[0])
    with Session(create_engine(world_db_url)) as session:
        assert session.scalar(select(func.count()).select_from(FeatureOutput)) == 64


def test_server_measures_it_in_the_background_when_the_setting_is_on(world_db_url, bundle, make_app_client):
    import time

    from app.ml.bundle import ModelBundle

    own = ModelBundle(lm=bundle.lm, saes={"world-l1": bundle.saes["world-l1"]})
    client = make_app_client(database_url=world_db_url, bundle=own, output_evidence=True)
    deadline = time.monotonic() + 120
    while len(_rows(world_db_url, "world-l1")) < 64 and time.monotonic() < deadline:
        time.sleep(0.2)
        assert client.get("/-/health").status_code == 200  # pages answer meanwhile
    assert len(_rows(world_db_url, "world-l1")) == 64
    assert _rows(world_db_url, "world-l2") == {}  # not loaded on this server: left alone
