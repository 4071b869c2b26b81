"""Accounts, sessions, roles, API keys and CSRF."""

from __future__ import annotations

import logging

from app.services import passwords
from tests.labels.factories import PASSWORD
from tests.labels.helpers import meta_csrf, soup


def test_register_login_logout_with_safe_cookies(lab):
    c = lab.client(base_url="https://testserver")
    token = meta_csrf(c.get("/register"))
    r = c.post("/register", data={"username": "ada", "password": PASSWORD, "csrf_token": token, "next": "/account"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account"
    cookie = r.headers["set-cookie"]
    assert "fb_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    page = soup(c.get("/account"))
    assert page.select_one("h1").get_text() == "ada"
    assert page.select_one(".role").get_text() == "labeler"
    r = c.post("/logout", data={"csrf_token": meta_csrf(c.get("/account"))}, follow_redirects=False)
    assert r.status_code == 303 and 'fb_session=""' in r.headers["set-cookie"]
    assert soup(c.get("/account")).select_one("form.login") is not None


def test_http_cookie_is_not_secure(lab):
    lab.user("bob")
    c = lab.client()
    r = c.post("/login", data={"username": "bob", "password": PASSWORD, "csrf_token": meta_csrf(c.get("/login"))},
               follow_redirects=False)
    assert r.status_code == 303 and "Secure" not in r.headers["set-cookie"]


def test_wrong_password_and_unknown_user_look_the_same(lab):
    lab.user("bob")
    c = lab.client()
    token = meta_csrf(c.get("/login"))
    for name, password in [("bob", "wrong password"), ("nobody", PASSWORD)]:
        r = c.post("/login", data={"username": name, "password": password, "csrf_token": token})
        assert r.status_code == 401
        assert soup(r).select_one(".error-message").get_text() == "Wrong username or password."


def test_password_is_hashed_with_salt_and_never_logged(lab, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "a-very-unusual-password-9431"
    c = lab.client()
    c.post("/register", data={"username": "eve", "password": secret, "csrf_token": meta_csrf(c.get("/register"))})
    c.post("/register", data={"username": "mal", "password": secret, "csrf_token": meta_csrf(c.get("/register"))})
    from app.store import accounts as qa

    with lab.session() as s:
        hashes = [qa.get_account_by_username(s, n).password_hash for n in ("eve", "mal")]
    assert all(h.startswith("scrypt$") and secret not in h for h in hashes)
    assert hashes[0] != hashes[1], "same password, different salts, different hashes"
    assert passwords.verify_password(secret, hashes[0]) and not passwords.verify_password("nope", hashes[0])
    assert secret not in caplog.text


def test_registration_closed_and_existing_name(make_lab):
    lab = make_lab(open_registration=False)
    assert lab.anon.get("/register").status_code == 403
    assert soup(lab.anon.get("/login")).select_one("a.register") is None
    lab = make_lab()
    lab.user("ada")
    c = lab.client()
    r = c.post("/register", data={"username": "ada", "password": PASSWORD, "csrf_token": meta_csrf(c.get("/register"))})
    assert r.status_code == 422 and "taken" in soup(r).select_one(".error-message").get_text()


def test_csrf_required_on_forms_and_htmx(lab):
    lab.user("ada")
    c = lab.browser("ada")
    url = f"{lab.feature_url(1)}/labels"
    assert c.post(url, data={"text": "no token"}).status_code == 403
    assert c.post(url, data={"text": "bad token", "csrf_token": "x" * 30}).status_code == 403
    other = lab.browser("ada")  # another session of the same person has another token
    assert c.post(url, data={"text": "other's token", "csrf_token": other.csrf}).status_code == 403
    r = c.post(url, data={"text": "via htmx"}, headers={"HX-Request": "true", "X-CSRF-Token": c.csrf})
    assert r.status_code == 200 and soup(r).select_one("section.fb-labels .label-text").get_text() == "via htmx"
    assert c.post("/logout", data={}).status_code == 403
    page = soup(c.get(f"{lab.feature_url(1)}/labels"))
    assert page.select_one('meta[name="csrf-token"]')["content"] == c.csrf
    assert c.csrf in page.select_one("section.fb-labels")["hx-headers"]


def test_login_csrf_needs_the_prelogin_cookie(lab):
    lab.user("ada")
    c = lab.client()
    token = meta_csrf(c.get("/login"))
    stranger = lab.client()
    r = stranger.post("/login", data={"username": "ada", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 403


def test_viewer_reads_but_cannot_write(lab):
    lab.user("vic", role="viewer")
    c = lab.browser("vic")
    assert c.get(f"{lab.feature_url(1)}/labels").status_code == 200
    r = c.post(f"{lab.feature_url(1)}/labels", data={"text": "x", "csrf_token": c.csrf})
    assert r.status_code == 403
    api = lab.api("vic")
    assert api.post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "x"}).status_code == 403


def test_anonymous_read_off_requires_login(make_lab):
    lab = make_lab(anonymous_read=False)
    r = lab.anon.get(f"{lab.feature_url(1)}/labels", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert lab.anon.get(f"/api/v1{lab.feature_url(1)}/labels").status_code == 401
    lab.user("ada")
    assert lab.api("ada").get(f"/api/v1{lab.feature_url(1)}/labels").status_code == 200
    assert lab.browser("ada").get(f"{lab.feature_url(1)}/labels").status_code == 200


def test_api_keys_shown_once_hashed_bearer_revocable(lab):
    lab.user("ada")
    c = lab.browser("ada")
    r = c.post("/account/keys", data={"name": "notebook", "csrf_token": c.csrf})
    token = soup(r).select_one(".new-key code.token").get_text()
    assert token.startswith("fbk_") and r.headers["cache-control"] == "no-store"
    again = c.get("/account")
    assert token not in again.text and soup(again).select_one(".new-key") is None
    with lab.session() as s:
        from sqlalchemy import select

        from app.store.models import ApiKey

        stored = s.scalars(select(ApiKey.key_hash)).all()
    assert token not in stored and passwords.api_key_hash(token) in stored
    api = lab.client()
    api.headers["Authorization"] = f"Bearer {token}"
    assert api.get("/api/v1/account").json()["account"]["username"] == "ada"
    assert api.post(f"/api/v1{lab.feature_url(2)}/labels", json={"text": "by script"}).status_code == 201
    key_id = [k for k in api.get("/api/v1/account").json()["api_keys"] if k["name"] == "notebook"][0]["id"]
    r = c.post(f"/account/keys/{key_id}/revoke", data={"csrf_token": c.csrf}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and soup(r).select_one("tr.key.revoked") is not None
    assert api.post(f"/api/v1{lab.feature_url(2)}/labels", json={"text": "after revoke"}).status_code == 401


def test_json_writes_need_a_key_even_when_logged_in(lab):
    lab.user("ada")
    c = lab.browser("ada")
    r = c.post(f"/api/v1{lab.feature_url(1)}/labels", json={"text": "cookie only"},
               headers={"X-CSRF-Token": c.csrf})
    assert r.status_code == 401 and "API key" in r.json()["detail"]


def test_admin_sets_roles(lab):
    lab.user("root", role="admin")
    ada = lab.user("ada")
    admin = lab.browser("root")
    page = soup(admin.get("/admin/accounts"))
    assert [td.get_text() for td in page.select("tr.account-row td.fb-user-text")] == ["root", "ada"]
    admin.post(f"/admin/accounts/{ada.id}/role", data={"role": "viewer", "csrf_token": admin.csrf})
    assert lab.api("root").get("/api/v1/admin/accounts").json()["accounts"][1]["role"] == "viewer"
    c = lab.browser("ada")
    assert c.get("/admin/accounts").status_code == 403


def test_write_rate_limit_per_account(make_lab):
    lab = make_lab(write_rate_limit="3/minute")
    lab.user("ada")
    lab.user("bob")
    ada, bob = lab.api("ada"), lab.api("bob")
    url = f"/api/v1{lab.feature_url(1)}/comments"
    assert [ada.post(url, json={"body": str(i)}).status_code for i in range(4)] == [201, 201, 201, 429]
    r = ada.post(url, json={"body": "again"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert bob.post(url, json={"body": "bob is not limited by ada"}).status_code == 201
