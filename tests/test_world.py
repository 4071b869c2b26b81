"""The fixture world itself: what tests may rely on, read back through the pages and the JSON twins."""

from __future__ import annotations

from bs4 import BeautifulSoup

from tests.fixtures import ACCOUNTS, add_source


def test_world_sources_are_precomputed_with_examples(world, world_client):
    home = world_client.get("/api/v1").json()
    assert [s["name"] for s in home["data"]] == ["world-l1", "world-l2"]
    assert all(s["status"] == "complete" and s["n_tokens"] > 0 for s in home["data"])
    feature = world_client.get(f"/api/v1/sources/world-l1/features/{world.labeled}").json()
    assert feature["groups"] and feature["groups"][0]["kind"] == "top"
    assert feature["label"] == "numbers and digits"  # ada's, upvoted by bob, outranks bob's own


def test_world_people_labels_and_list(world, world_client):
    labels = world_client.get(f"/api/v1/sources/world-l1/features/{world.labeled}/labels").json()
    assert [lab["author"] for lab in labels["labels"]] == ["ada", "bob"]
    history = world_client.get(f"/api/v1/labels/{world.label_ids['ada']}").json()
    assert [r["version"] for r in history["revisions"]] == [2, 1]
    assert labels["comments"][0]["author"] == "ada"
    items = world_client.get(f"/api/v1/lists/{world.list_slug}").json()["items"]
    assert [it["index"] for it in items] == world.alive["world-l1"][:3]
    assert set(ACCOUNTS) <= {"root", "ada", "bob", "vic"}


def test_made_up_sources_go_through_the_writer(world_db_url, world_client):
    add_source(world_db_url, name="made up", d_sae=16, dead={3}, dense={5})
    page = BeautifulSoup(world_client.get("/sources/made%20up").text, "html.parser")
    rows = {int(r["data-index"]): r for r in page.select("table.features tbody tr")}
    assert len(rows) == 16 and "dead" in rows[3]["class"]
    feature = world_client.get("/api/v1/sources/made%20up/features/5").json()
    assert feature["density"] == 0.6 and feature["groups"]
