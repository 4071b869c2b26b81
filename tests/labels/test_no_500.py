"""Each cause of a 500 that the route fuzzer (tests/test_fuzz.py) found, as a readable case, on both databases."""

from __future__ import annotations

import json

import pytest

from tests.fuzz_routes import bad_header_bytes


@pytest.mark.parametrize("url", ["/sources/%00nul", "/api/v1/sources/%00", "/lists/%00", "/steer/%00",
                                 "/sources/x/features/1?context=%00", "/search?q=a%00b"])
def test_nul_in_the_address_is_400_naming_it(any_lab, url):
    r = any_lab.anon.get(url, headers={"Accept": "application/json"})
    assert r.status_code == 400 and "NUL" in r.json()["detail"]


@pytest.mark.parametrize("url", ["/labels/99999999999999999999999", "/api/v1/labels/-99999999999999999999",
                                 "/sources/lab-sae/features/9223372036854775808", "/sources/lab-sae?page=99999999999999999999999",
                                 "/api/v1/sources/lab-sae/activity?before=99999999999999999999999"])
def test_integers_past_64_bits_are_refused_or_not_found(any_lab, url):
    r = any_lab.anon.get(url, headers={"Accept": "application/json"})
    assert r.status_code in (400, 404), r.text
    if r.status_code == 400:
        assert "too large" in r.json()["detail"]


def test_nul_and_huge_numbers_in_forms_reach_the_database_safely(any_lab):
    lab = any_lab
    lab.user("ada")
    c = lab.browser("ada")
    r = c.post("/lists", data={"source": "nul\x00", "name": "n", "csrf_token": c.csrf}, headers={"Accept": "application/json"})
    assert r.status_code in (400, 404, 422), r.text
    r = c.post("/labels/1/edit", data={"text": "t", "base_version": str(10**23), "csrf_token": c.csrf},
               headers={"Accept": "application/json"})
    assert r.status_code in (400, 404), r.text


def test_a_redirect_target_cannot_split_headers(lab):
    lab.user("ada")
    c = lab.browser("ada")
    for target in ["/\r\nSet-Cookie: evil=1", "/\u202e", "/caf\u00e9"]:
        r = c.post(f"{lab.feature_url(1)}/labels", data={"text": "t", "next": target, "csrf_token": c.csrf},
                   headers={"HX-Request": "true"}, follow_redirects=False)
        assert r.status_code == 200 and not bad_header_bytes(r), target
        assert "evil" not in str(r.headers.raw) and r.headers["HX-Redirect"].isascii()
    assert r.headers["HX-Redirect"] == "/caf%C3%A9"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-1e400"])
def test_non_finite_numbers_echoed_back_still_make_json(lab, value):
    r = lab.anon.get(f"/api/v1{lab.feature_url(1)}/labeling?min_density={value}")
    assert r.status_code < 500 and json.loads(r.text) is not None
    r = lab.anon.post("/api/v1/live", content=b"1e999999", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and json.loads(r.text)["detail"]


def test_hostile_json_bodies_are_422(lab):
    deep = b"[" * 100_000
    r = lab.anon.post("/api/v1/steer", content=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "nested too deeply" in r.text
    for body in (b"[]", b"not json", deep):
        r = lab.anon.post(f"/api/v1{lab.feature_url(1)}/test", content=body,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (body[:10], r.text[:200])
