"""Hostile requests for every route of an app, built from the app's own route table (used by test_fuzz.py).

`route_table(app)` lists (path template, methods, query names, form fields, has a JSON body) for every route.
`hostile_requests(routes, fill, ...)` yields (method, url, kwargs) for: each path parameter replaced by each
hostile segment, each query parameter set to each hostile value, hostile headers, and for state-changing
routes hostile form and JSON bodies (NUL, overlong, bidi, invalid UTF-8, deep nesting, huge numbers).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

# Percent-escaped path segments (what arrives on the wire), hostile in different ways. Every path parameter gets
# the first CORE of them; the rest rotate over the parameters, so each is sent somewhere in every run.
CORE = 5
SEGMENTS = [
    "nul%00nul", "%ff", "%E2%80%AE%E2%80%8Fevil", "%0D%0ASet-Cookie:%20x=1", "99999999999999999999999",
    "a" * 5000, "9223372036854775808", "%00", "%C0%AF", "%ED%A0%80", "%F0%9F%92%A9", "%25", "%2e%2e", "..%5C..%5Cwindows", "-1", "-99999999999999999999",
    "1e308", "NaN", "0x7fffffff", "2147483648", "1.5", "%20", "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "%27%20OR%201%3D1%20--", "%5Cu0000",
]
# Query values (raw, percent-escaped on the wire).
VALUES = [
    "%ff%fe", "a" * 20000, "99999999999999999999999", "1e400", "NaN", "%0D%0A", "x%00y",
    "%00", "%E2%80%AE", "-99999999999999999999", "-1e400", "Infinity", "-0", "", "%5B%5D", "%3Cimg%20src%3Dx%3E",
]
# Header values as bytes: what a client may put on the wire (UTF-8 and other non-ASCII bytes included).
HEADERS = [
    {"Accept": b"application/json"},
    {"Accept": b"text/html", "HX-Request": b"true", "HX-Target": "\u202e".encode()},
    {"Accept": b"*/*", "HX-Request": b"true", "HX-Boosted": b"true", "HX-History-Restore-Request": b"true"},
    {"Cookie": b"fb_session=" + b"A" * 5000 + b"; fb_prelogin=%00"},
    {"Authorization": b"Bearer " + b"\xff" * 40},
    {"Authorization": b"Basic Zm9vOmJhcg=="},
    {"X-CSRF-Token": b"\x01" * 10, "Content-Type": b'application/json; charset="\\"'},
    {"Range": b"bytes=99999999999999999999-", "If-None-Match": b'"' * 300},
    {"Accept-Language": "\u202e".encode() * 50, "User-Agent": b"\xff" * 2000, "Origin": b"null"},
]
_DEEP = "[" * 50_000 + "]" * 50_000
JSON_BODIES = [
    b'{"text": "nul\\u0000", "body": "nul\\u0000", "name": "\\u0000", "prompt": "\\u0000", "source": "\\u0000"}',
    json.dumps({"text": "\u202e" * 100, "body": "\u202e", "features": [{"source": "\u202e", "feature": 1}]}).encode(),
    b'{"text": "\\ud800", "body": "\\udfff", "prompt": "\\ud800"}',  # lone surrogates
    b'{"feature": 1e400, "strength": -1e400, "n_tokens": 99999999999999999999999, "seed": 1e308, "value": 1e400}',
    b'{"base_version": 99999999999999999999999, "index": -99999999999999999999, "value": 99999999999999999999}',
    _DEEP.encode(),
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    b"\xff\xfe\xfd not utf-8 {",
    b"[]", b"1e999999", b"",
    json.dumps({"text": "x" * 200_000, "prompt": "x" * 200_000, "body": "x" * 200_000}).encode(),
    b'{"features": [' + b'{"source": "s", "feature": 0, "strength": 1},' * 2000 + b'{}]}',
]
FORM_VALUES = ["nul\x00", "\u202e\u2066", "a" * 100_000, "99999999999999999999999", "-1e400", "\ud800"]


@dataclass
class RouteInfo:
    path: str
    methods: list[str]
    query: list[str] = field(default_factory=list)
    form: list[str] = field(default_factory=list)
    json_body: bool = False

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)(?::\w+)?}", self.path)


def _walk(routes):
    for route in routes:
        if hasattr(route, "effective_candidates"):  # FastAPI's included router: its routes with full paths
            yield from _walk(route.effective_candidates())
        else:
            yield route


def _query_names(dependant) -> list[str]:
    names = [p.alias or p.name for p in dependant.query_params]
    for sub in dependant.dependencies:
        names += _query_names(sub)
    return list(dict.fromkeys(names))


def route_table(app) -> list[RouteInfo]:
    out = []
    for route in _walk(app.routes):
        path = getattr(route, "path", None)
        if path is None:
            continue
        if not getattr(route, "methods", None):  # a mount (static files): probe a file path under it
            out.append(RouteInfo(path + "/{file}", ["GET"]))
            continue
        dependant = getattr(route, "dependant", None)
        info = RouteInfo(path, sorted(set(route.methods) - {"HEAD"}))
        if dependant is not None:
            info.query = _query_names(dependant)
            body = [p.alias or p.name for p in dependant.body_params]
            info.json_body = body == ["body"] or (not body and "POST" in info.methods and path.startswith("/api/"))
            info.form = [] if info.json_body else body
        out.append(info)
    return out


def _url(route: RouteInfo, values: dict[str, str]) -> str:
    url = route.path
    for name in route.params:
        url = re.sub(r"{%s(?::\w+)?}" % name, values[name], url)
    return url


class _Rotation:
    """The first ``core`` items every time, then ``extra`` more, continuing where the last call stopped."""

    def __init__(self, items: list, core: int, extra: int):
        self.items, self.core, self.extra, self.at = items, min(core, len(items)), extra, 0

    def next(self) -> list:
        rest = self.items[self.core:]
        picked = [rest[(self.at + i) % len(rest)] for i in range(min(self.extra, len(rest)))] if rest else []
        self.at += self.extra
        return self.items[:self.core] + picked


def hostile_requests(routes: list[RouteInfo], fill: dict[str, str], segments=SEGMENTS, values=VALUES,
                     headers=HEADERS, json_bodies=JSON_BODIES, form_values=FORM_VALUES, core: int = CORE):
    """(method, url, httpx kwargs) for every route; ``fill`` gives a valid value for each path parameter."""
    segs, vals, hdrs = _Rotation(segments, core, 2), _Rotation(values, core - 2, 1), _Rotation(headers, 1, 1)
    for route in routes:
        good = {name: quote(fill.get(name, "1"), safe="/" if name == "file" else "") for name in route.params}
        for method in route.methods:
            for name in route.params:
                for seg in segs.next():
                    yield method, _url(route, {**good, name: seg}), {}
            base = _url(route, good)
            for name in route.query + ["zz"]:
                for value in vals.next():
                    yield method, f"{base}?{name}={value}", {}
            for extra in hdrs.next():
                yield method, base, {"headers": extra}
            if method == "GET":
                continue
            if route.json_body or route.path.startswith("/api/"):
                for body in json_bodies:
                    yield method, base, {"content": body, "headers": {"Content-Type": "application/json"}}
            for i, value in enumerate(form_values):
                fields = {name: value for name in route.form or ["x"]}
                if "next" in fields:
                    fields["next"] = "/" + value + "\r\nSet-Cookie: x=1"  # a redirect target that splits headers
                encoded = "&".join(f"{quote(k)}={quote(v, errors='surrogatepass')}" for k, v in fields.items())
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                if i % 2:  # as htmx sends it: redirects then travel in an HX-Redirect header
                    form = {**form, "HX-Request": "true"}
                yield method, base, {"content": encoded.encode(), "headers": form}
            yield method, base, {"content": b"x=%ff%fe&csrf_token=%00",
                                 "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
            yield method, base, {"content": b"--b\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n\x00\xff\r\n--b--",
                                 "headers": {"Content-Type": "multipart/form-data; boundary=b"}}


def bad_header_bytes(response) -> list[tuple[bytes, bytes]]:
    """Response headers a real HTTP server could not send (CR, LF or NUL in them reset the connection)."""
    return [(k, v) for k, v in response.headers.raw if re.search(rb"[\r\n\x00]", k + v)]
