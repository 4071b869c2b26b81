"""Label scores where people read labels: the source's feature table sorts by the canonical label's score and shows
it, label cards (feature labels panel and page) and the label page show each method's newest score, and the
canonical label prefers a person's label to an unvoted machine draft."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import event

from app.store import autolabel as qa
from app.store import labels as ql
from app.store import sources as qs
from app.store.models import utcnow

HX = {"HX-Request": "true"}
SOURCE = "/sources/words-sae"


def soup(response) -> BeautifulSoup:
    assert response.status_code == 200, response.text[:300]
    return BeautifulSoup(response.text, "html.parser")


def _label(session, index: int, text: str, method: str = "human", score: float | None = None,
           age_minutes: int = 0, status: str = "ok") -> int:
    source_id = qs.source_by_ref(session, "words-sae").id
    label = ql.insert_label(session, source_id, index, qa.system_account_id(session), text, "", [], method,
                            created_at=utcnow() - timedelta(minutes=age_minutes))
    if score is not None or status != "ok":
        qa.insert_label_score(session, label.id, 1, "embedding", score, {"activating": [], "non_activating": []},
                              [], status=status, error=None if status == "ok" else "HTTP 500")
    return label.id


@pytest.fixture
def scored(lab) -> dict[str, int]:
    """Features 0-2 scored 0.9, 0.3, 0.6; 3's canonical (human) label is unscored while an equally voted, newer
    machine draft scored 0.99; 4's only score failed; 5 has no label; 6 is dead."""
    with lab.session() as session:
        ids = {"paris": _label(session, 0, "the city of Paris", score=0.9),
               "dog": _label(session, 1, "dogs", score=0.3),
               "rain": _label(session, 2, "rain", score=0.6),
               "piano": _label(session, 3, "piano", age_minutes=10),
               "piano_draft": _label(session, 3, "promotes: piano", method="auto:output", score=0.99),
               "coffee": _label(session, 4, "coffee", status="failed")}
        qa.insert_label_score(session, ids["dog"], 1, "embedding", 0.35, {}, [])  # newest ok score wins
        session.commit()
    return ids


def _order(doc) -> list[int]:
    return [int(tr["data-index"]) for tr in doc.select("#feature-table tbody tr[data-index]")]


@pytest.mark.parametrize("order, expected", [("asc", [1, 2, 0, 3, 4, 5, 6]), ("desc", [0, 2, 1, 3, 4, 5, 6])])
def test_feature_table_sorts_by_label_score_with_unscored_last(lab, scored, order, expected):
    doc = soup(lab.anon.get(f"{SOURCE}?sort=score&order={order}"))
    assert _order(doc) == expected
    assert doc.select_one('select[name="sort"] option[selected]')["value"] == "score"
    header = doc.select_one('#feature-table th[aria-sort] a')  # aria-sort on the header cell (axe)
    assert "sort=score" in header["href"] and header.text.startswith("Label score")
    cells = {int(tr["data-index"]): tr.select_one("td.label-score") for tr in doc.select("tbody tr[data-index]")}
    assert cells[0].text == "0.90" and cells[0]["data-score"] == "0.9"
    assert cells[1].text == "0.35"
    assert cells[3].text == "—" and not cells[3].has_attr("data-score")  # the human label ranks first, unscored
    assert cells[4].text == "—" and cells[5].text == "—"

    block = lab.anon.get(f"{SOURCE}?sort=score&order={order}", headers=HX)
    assert block.text.lstrip().startswith('<section id="feature-table"') and "<html" not in block.text
    assert _order(BeautifulSoup(block.text, "html.parser")) == expected


def test_feature_table_json_twin_carries_label_scores(lab, scored):
    data = lab.anon.get(f"/api/v1{SOURCE}/features?sort=score&order=desc&hide_dead=1").json()
    assert data["sort"] == "score" and data["score_method"] == "embedding"
    assert [row["index"] for row in data["data"]] == [0, 2, 1, 3, 4, 5]
    assert [row["label_score"] for row in data["data"]] == [0.9, 0.6, 0.35, None, None, None]
    assert data["data"][3]["label"] == "piano"
    by_index = lab.anon.get(f"/api/v1{SOURCE}/features").json()  # scores show in every sort, not only this one
    assert [row["label_score"] for row in by_index["data"]][:3] == [0.9, 0.35, 0.6]


def test_label_cards_and_label_page_show_each_methods_newest_score(lab, scored):
    with lab.session() as session:
        qa.insert_label_score(session, scored["paris"], 1, "detection", 0.55, {}, [])
        session.commit()
    panel = soup(lab.anon.get(f"{SOURCE}/features/0"))
    card = panel.select_one(f".fb-feature-panel article#label-{scored['paris']}")
    chips = {c["data-method"]: c.text.strip() for c in card.select(".label-scores .al-score")}
    assert chips == {"embedding": "embedding AUC 0.90", "detection": "detection bal. acc. 0.55"}

    page = soup(lab.anon.get(f"{SOURCE}/features/3/labels"))
    draft = page.select_one(f"article#label-{scored['piano_draft']}")
    assert draft.select_one('.al-score.high[data-method="embedding"]').text.strip() == "embedding AUC 0.99"
    assert not page.select_one(f"article#label-{scored['piano']} .label-scores")  # unscored: no empty row
    first = page.select_one("article.label-card")
    assert first["id"] == f"label-{scored['piano']}" and "canonical" in first["class"]

    failed = soup(lab.anon.get(f"{SOURCE}/features/4/labels"))
    assert failed.select_one('.label-scores .al-score.failed[data-method="embedding"]')["title"] == "HTTP 500"

    label_page = soup(lab.anon.get(f"/labels/{scored['dog']}"))
    assert label_page.select_one('.label-scores .al-score[data-method="embedding"]').text.strip() == "embedding AUC 0.35"
    assert label_page.select_one("a.score-details")["href"] == f"{SOURCE}/features/1/scores"


def test_label_json_twins_carry_scores_without_details(lab, scored):
    labels = lab.anon.get(f"/api/v1{SOURCE}/features/0/labels").json()["labels"]
    embedding = labels[0]["scores"]["embedding"]
    assert embedding["score"] == 0.9 and embedding["status"] == "ok" and "details" not in embedding
    detail = lab.anon.get(f"/api/v1/labels/{scored['coffee']}").json()
    assert detail["label"]["scores"]["embedding"]["status"] == "failed"


def test_scores_of_all_labels_on_a_page_come_from_one_query(lab, scored):
    with lab.session() as session:
        for k in range(3):
            _label(session, 3, f"more piano {k}", score=0.5 + k / 10)
        session.commit()
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        if "FROM label_score" in statement:
            statements.append(statement)

    engine = lab.app.state.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        doc = soup(lab.anon.get(f"{SOURCE}/features/3/labels"))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(doc.select("article.label-card .label-scores")) == 4
    assert len(statements) == 1


def test_canonical_label_prefers_a_person_to_an_unvoted_machine_draft(lab):
    lab.user("ann")
    with lab.session() as session:
        human = _label(session, 0, "Paris", age_minutes=10)
        draft = _label(session, 0, "promotes: Paris", method="auto:output")
        session.commit()
        source_id = qs.source_by_ref(session, "words-sae").id
        assert ql.canonical_labels(session, source_id, [0]) == {0: "Paris"}
        assert [lab_["id"] for lab_ in ql.feature_labels(session, source_id, 0, None)] == [human, draft]
    api = lab.api("ann")
    assert api.put(f"/api/v1/labels/{draft}/vote", json={"value": 1}).status_code == 200
    with lab.session() as session:  # an accepted (upvoted) draft outranks the unvoted human label
        assert ql.canonical_labels(session, qs.source_by_ref(session, "words-sae").id, [0]) == {0: "promotes: Paris"}
