"""The batch runner: drafts stored as labels (never over human ones), scores with inputs and details, resume,
bounded concurrency against the fake LLM, failures recorded as failures, and label_scores for the feature table."""

from __future__ import annotations

from sqlalchemy import select

from app.cli import main as cli_main
from app.services import labels as service
from app.services.autolabel.llm import LLMConfig
from app.services.autolabel.runner import AutolabelConfig, AutolabelRunner
from app.store import autolabel as q
from app.store import sources as qs
from app.store.models import Label, LabelScore
from tests.autolabel.conftest import needs_embed
from tests.labels.factories import make_account


def _run(url, **kw):
    return AutolabelRunner(AutolabelConfig(database_url=url, source="words-sae", progress=False, **kw)).run()


def _human_label(sessions, index, text):
    with sessions() as session:
        actor, _ = make_account(session, "ada", with_key=False)
        return service.create_label(session, actor, "words-sae", index, text)


@needs_embed
def test_offline_run_drafts_scores_and_resumes(word_db_url, sessions):
    human = _human_label(sessions, 2, "weather words")
    first = _run(word_db_url)
    assert first.features == 6  # the dead feature is not a candidate
    assert first.drafts == {"input": 5, "output": 5}  # feature 2 has a human label: no drafts there
    assert first.scores["embedding"] == 11 and not first.errors
    with sessions() as session:
        labels = session.scalars(select(Label).order_by(Label.id)).all()
        drafts = [lab for lab in labels if lab.method.startswith("auto:")]
        assert {lab.author_id for lab in drafts} == {q.system_account_id(session)}
        kept = session.get(Label, human["id"])
        assert (kept.text, kept.method, kept.version) == ("weather words", "human", 1)
        rows = session.scalars(select(LabelScore)).all()
        assert len(rows) == 11 and all(r.status == "ok" and 0 <= r.score <= 1 for r in rows)
        row = rows[0]
        assert row.inputs["activating"] and row.inputs["non_activating"]
        assert len(row.details) == len(row.inputs["activating"]) + len(row.inputs["non_activating"])
        by_feature = q.label_scores(session, qs.source_by_ref(session, "words-sae").id, range(7))
        assert set(by_feature) == {0, 1, 2, 3, 4, 5} and by_feature[0] > 0.8
    again = _run(word_db_url)
    assert again.drafts == {} and again.scores == {}
    assert again.drafts_skipped == {"input": 6, "output": 6} and again.scores_skipped["embedding"] == 11


def test_llm_drafts_and_scores_with_bounded_concurrency(word_db_url, sessions, fake_llm):
    llm = LLMConfig(url=fake_llm.url, model="fake", retries=0)
    summary = _run(word_db_url, drafters=("llm",), scorers=("detection", "fuzzing"), llm=llm, concurrency=2)
    assert summary.drafts == {"llm": 6} and summary.scores == {"detection": 6, "fuzzing": 6}, summary.errors
    assert 1 <= fake_llm.max_in_flight <= 2
    with sessions() as session:
        texts = set(session.scalars(select(Label.text).where(Label.method == "auto:llm")))
        assert 'the word "Paris"' in texts
        scores = session.scalars(select(LabelScore.score)).all()
        assert min(scores) == 1.0


def test_provider_failures_are_stored_as_failed_scores_and_retried(word_db_url, sessions, fake_llm):
    llm = LLMConfig(url=fake_llm.url, model="fake", retries=0)
    fake_llm.mode = "error"
    failed = _run(word_db_url, drafters=("input", "llm"), scorers=("detection",), llm=llm, features=(0, 1))
    assert failed.draft_failures == {"llm": 2} and failed.score_failures == {"detection": 2}
    with sessions() as session:
        rows = session.scalars(select(LabelScore)).all()
        assert {(r.status, r.score) for r in rows} == {("failed", None)}
        assert "HTTP 500" in rows[0].error
        assert q.label_scores(session, 1, None, method="detection") == {}
    fake_llm.mode = "ok"
    retried = _run(word_db_url, drafters=("input", "llm"), scorers=("detection",), llm=llm, features=(0, 1))
    assert retried.drafts == {"llm": 2} and retried.drafts_skipped == {"input": 2}
    assert retried.scores == {"detection": 4}


def test_cli_reports_bad_requests_in_one_line(word_db_url, capsys, monkeypatch):
    monkeypatch.delenv("FEATUREBOARD_LLM_URL", raising=False)
    assert cli_main(["autolabel", "--source", "nope", "--scorers", "", "--database-url", word_db_url]) == 2
    assert "no source named 'nope'" in capsys.readouterr().err
    assert cli_main(["autolabel", "--source", "words-sae", "--scorers", "fuzzing",
                     "--database-url", word_db_url]) == 2
    assert "need an LLM" in capsys.readouterr().err
    assert cli_main(["autolabel", "--source", "words-sae", "--scorers", "", "--features", "0-2",
                     "--database-url", word_db_url, "--no-progress"]) == 0
    assert "drafts: input 3, output 3" in capsys.readouterr().out
