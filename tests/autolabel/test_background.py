"""Labels without anyone asking (FEATUREBOARD_AUTOLABEL): drafts for every alive feature, the shipped scores of
the demo build applied to drafts with the same feature and text, and background scoring of the rest."""

from __future__ import annotations

import shutil

from sqlalchemy import select

from app.services.autolabel import background
from app.store import autolabel as q
from app.store import sources as qs
from app.store.labels import canonical_labels
from app.store.models import Label, LabelScore
from tests.autolabel.conftest import needs_embed


def _canonical(sessions) -> dict[int, str]:
    with sessions() as session:
        return canonical_labels(session, qs.source_by_ref(session, "words-sae").id)


def test_draft_all_labels_every_alive_feature_once(word_db_url, sessions):
    progress = []
    assert background.draft_all(word_db_url, on_progress=lambda d, t: progress.append((d, t))) == 12
    assert sorted(_canonical(sessions)) == [0, 1, 2, 3, 4, 5]  # the dead feature 6 has nothing to draft from
    assert progress[-1] == (6, 6)
    # until scored, the newest draft is canonical: the input-centric one (output drafts are written first)
    with sessions() as session:
        methods = {lab.feature_index: lab.method for lab in session.scalars(select(Label).order_by(Label.id))}
        texts = _canonical(sessions)
        assert all(texts[i] == session.scalar(select(Label.text).where(Label.feature_index == i,
                                                                       Label.method == "auto:input"))
                   for i in texts) and set(methods.values()) == {"auto:input"}
    assert background.draft_all(word_db_url) == 0  # resumable: nothing twice


@needs_embed
def test_shipped_scores_apply_to_matching_drafts_only(word_db_url, sessions, tmp_path):
    fresh = tmp_path / "fresh.db"
    shutil.copy(word_db_url.removeprefix("sqlite:///"), fresh)
    fresh_url = f"sqlite:///{fresh}"
    background.draft_all(word_db_url)
    background.score_all(word_db_url)
    shipped = tmp_path / "label_scores.json.gz"
    counts = background.export_scores(word_db_url, shipped)
    assert counts == {"words-sae": 12}
    before = _canonical(sessions)

    background.draft_all(fresh_url)
    from app.store.engine import make_engine, make_sessionmaker

    engine = make_engine(fresh_url)
    fresh_sessions = make_sessionmaker(engine)
    with fresh_sessions() as session:  # one draft whose text differs from the build's: it keeps no shipped score
        label = session.scalars(select(Label).where(Label.feature_index == 1, Label.method == "auto:output")).one()
        label.text = "promotes: something else"
        session.commit()
    assert background.apply_shipped_scores(fresh_url, shipped) == 11
    assert background.apply_shipped_scores(fresh_url, shipped) == 0  # already scored
    with fresh_sessions() as session:
        rows = session.scalars(select(LabelScore)).all()
        assert all(r.inputs == background.SHIPPED_INPUTS and r.ci_low <= r.score <= r.ci_high for r in rows)
        now = canonical_labels(session, qs.source_by_ref(session, "words-sae").id)
        assert {i: t for i, t in now.items() if i != 1} == {i: t for i, t in before.items() if i != 1}
        unscored = [lab.id for lab in session.scalars(select(Label)) if lab.draft_score is None]
        assert len(unscored) == 1
    background.score_all(fresh_url)  # the background pass scores what was not shipped
    with fresh_sessions() as session:
        assert q.scored_label_versions(session, 1, "embedding") >= {(unscored[0], 1)}
    engine.dispose()
