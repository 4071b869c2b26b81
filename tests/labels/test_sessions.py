"""Issue 16: cookies cannot be forged, logout ends a cookie on the server, logins cannot be brute-forced.

Every case runs on SQLite and on the local PostgreSQL (`any_lab`).
"""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from app.http import signing
from app.http.auth import SESSION_COOKIE
from app.store.models import ApiKey, LoginSession
from tests.labels.factories import PASSWORD
from tests.labels.helpers import meta_csrf, soup

OLD_PUBLIC_DEFAULT = "featureboard-demo-secret-change-me"  # what demo mode used to sign with


def _logged_in(client) -> bool:
    return client.get("/api/v1/account").status_code == 200


def _with_cookie(lab, value: str):
    c = lab.client()
    c.cookies.set(SESSION_COOKIE, value)
    return c


def test_forged_cookies_are_refused(any_lab):
    lab = any_lab
    root = lab.user("root", role="admin")
    secret = lab.app.state.settings.secret_key
    now = int(time.time())
    forged = [
        signing.sign(OLD_PUBLIC_DEFAULT, {"a": root.id, "n": "x" * 24, "iat": now}),  # the public default key
        signing.sign(OLD_PUBLIC_DEFAULT, {"s": "t" * 43, "iat": now}),
        signing.sign(secret, {"a": root.id, "n": "x" * 24, "iat": now}),  # the old payload, even correctly signed
        signing.sign(secret, {"s": "made-up-token-" + "q" * 30, "iat": now}),  # a token no login issued
        "garbage", "a.b.c", "." * 4000, "%E2%80%AE.x",
    ]
    for value in forged:
        c = _with_cookie(lab, value)
        assert not _logged_in(c), value[:40]
        r = c.get("/admin/accounts", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), value[:40]
        r = c.post(f"/admin/accounts/{root.id}/role", data={"role": "viewer"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), value[:40]
    assert lab.browser("root").get("/admin/accounts").status_code == 200, "a real login still works"


def test_the_secret_is_random_per_server(make_lab):
    a, b = make_lab(secret_key=""), make_lab(secret_key="")
    key_a, key_b = a.app.state.settings.secret_key, b.app.state.settings.secret_key
    assert len(key_a) >= 32 and key_a != key_b
    a.user("ada")
    c = a.browser("ada")
    stolen = c.cookies.get(SESSION_COOKIE)
    assert not _logged_in(_with_cookie(b, stolen)), "a cookie of one server must not open another"


def test_logout_ends_a_copied_cookie(any_lab):
    lab = any_lab
    lab.user("ada")
    c = lab.browser("ada")
    copy = _with_cookie(lab, c.cookies.get(SESSION_COOKIE))
    assert _logged_in(copy)
    r = c.post("/logout", data={"csrf_token": c.csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert not _logged_in(copy), "the copied cookie must die with the logout"
    assert not _logged_in(c)
    with lab.session() as s:
        assert s.scalars(select(LoginSession)).all() == []


def test_log_out_everywhere(any_lab):
    lab = any_lab
    lab.user("ada")
    laptop, phone = lab.browser("ada", headers={"User-Agent": "Laptop/1"}), lab.browser("ada")
    page = soup(laptop.get("/account"))
    rows = page.select("table.sessions tr.session")
    assert len(rows) == 2 and "(this browser)" in page.select_one("tr.session.current").get_text()
    assert "Laptop/1" in page.select_one("tr.session.current").get_text()
    r = phone.post("/account/sessions/end", data={"csrf_token": phone.csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not _logged_in(laptop) and not _logged_in(phone)
    assert _logged_in(lab.browser("ada")), "logging in again works"


def test_password_change_ends_other_sessions(any_lab):
    lab = any_lab
    lab.user("ada")
    here, elsewhere = lab.browser("ada"), lab.browser("ada")
    r = here.post("/account/password", data={"csrf_token": here.csrf, "current_password": "wrong one",
                                              "new_password": "a new long secret"})
    assert r.status_code == 422 and "current password is wrong" in soup(r).select_one(".error-message").get_text()
    assert _logged_in(elsewhere)
    r = here.post("/account/password", data={"csrf_token": here.csrf, "current_password": PASSWORD,
                                              "new_password": "a new long secret"})
    assert r.status_code == 200 and "Password changed" in soup(r).select_one(".notice").get_text()
    assert _logged_in(here), "the browser that changed it stays logged in (with a new session)"
    assert not _logged_in(elsewhere)
    assert _logged_in(lab.browser("ada", password="a new long secret"))


def test_role_change_ends_that_accounts_sessions_and_is_audited(any_lab):
    lab = any_lab
    lab.user("root", role="admin")
    ada = lab.user("ada")
    admin, c = lab.browser("root"), lab.browser("ada")
    assert soup(admin.get("/admin/accounts")).select("tr.account-row td.sessions")[1].get_text().startswith("1")
    admin.post(f"/admin/accounts/{ada.id}/role", data={"role": "viewer", "csrf_token": admin.csrf})
    assert not _logged_in(c)
    c = lab.browser("ada")
    admin.post(f"/admin/accounts/{ada.id}/sessions/end", data={"csrf_token": admin.csrf})
    assert not _logged_in(c) and _logged_in(admin)
    events = lab.api("root").get("/api/v1/admin/audit").json()["events"]
    assert [(e["action"], e["actor"], e["target"]) for e in events] == [
        ("sessions_revoked", "root", "ada"), ("role_changed", "root", "ada")]
    assert events[1]["detail"] == {"from": "labeler", "to": "viewer", "sessions_ended": 1}


def _login(client, name: str, password: str):
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": meta_csrf(client.get("/login"))})


def _message(r) -> str:
    return re.sub(r"\d+ s\b", "N s", soup(r).select_one(".error-message").get_text())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def limited_lab(request, make_lab):
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return make_lab(database_url=url, login_rate_limit="3/minute")


def test_brute_force_is_limited_per_name_and_per_address(limited_lab):
    lab = limited_lab
    lab.user("ada")
    # One attacker address guessing ada's password: three tries, then refused even with the right password.
    attacker = lab.client(client=("203.0.113.7", 4000))
    assert [_login(attacker, "ada", f"guess {i}").status_code for i in range(3)] == [401, 401, 401]
    refused = _login(attacker, "ada", PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    # Many addresses on one name: the name's own count stops them.
    other = lab.client(client=("198.51.100.9", 4000))
    assert _login(other, "ada", PASSWORD).status_code == 429
    # One address spraying names: the address's count stops it, for names that exist or not.
    sprayer = lab.client(client=("192.0.2.44", 4000))
    codes = [_login(sprayer, name, "guess").status_code for name in ("bob", "carol", "dave", "erin")]
    assert codes == [401, 401, 401, 429]
    # The refusal reads the same whether the account exists or not.
    nobody = lab.client(client=("192.0.2.45", 4000))
    for _ in range(3):
        _login(nobody, "no-such-account", "guess")
    unknown = _login(nobody, "no-such-account", "guess")
    assert unknown.status_code == 429 and _message(unknown) == _message(refused)
    assert "no-such-account" not in _message(unknown) and "ada" not in _message(refused)
    # A fresh address and an untouched name still log in.
    lab.user("fay")
    assert _login(lab.client(client=("192.0.2.99", 4000)), "fay", PASSWORD).status_code == 200


def test_registration_is_limited_and_states_the_policy(make_lab):
    lab = make_lab(login_rate_limit="2/minute")
    c = lab.client(client=("192.0.2.50", 4000))
    page = soup(c.get("/register"))
    assert "8 to 1024 characters" in page.select_one(".password-policy").get_text()

    def register(name, password=PASSWORD):
        return c.post("/register", data={"username": name, "password": password,
                                         "csrf_token": meta_csrf(c.get("/register"))}, follow_redirects=False)

    r = register("gil", "gil")
    assert r.status_code == 422 and "8 to 1024" in soup(r).select_one(".error-message").get_text()
    assert register("gil", "Gil").status_code == 422  # counted, too
    assert register("hal").status_code == 429


def test_api_key_last_use_is_recorded_at_most_once_a_minute(any_lab):
    lab = any_lab
    lab.user("ada")
    api = lab.api("ada")
    with lab.session() as s:
        assert s.scalar(select(ApiKey.last_used_at)) is None
    assert api.get("/api/v1/account").status_code == 200
    with lab.session() as s:
        first = s.scalar(select(ApiKey.last_used_at))
    assert first is not None
    for _ in range(3):
        api.get("/api/v1/account")
    with lab.session() as s:
        assert s.scalar(select(ApiKey.last_used_at)) == first, "a busy key must not write on every request"
    keys = api.get("/api/v1/account").json()["api_keys"]
    assert keys[0]["created_at"] and keys[0]["last_used_at"]
    page = soup(lab.browser("ada").get("/account"))
    assert page.select_one("table.keys td.last-used").get_text() != "never"
