"""`featureboard demo | serve | settings | db`: run the web server, print the settings, migrate the database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def settings_from(args: argparse.Namespace, **overrides):
    """Settings from the environment, with the command's flags on top."""
    from app.config import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    for name in ("host", "port", "database_url", "data_dir", "device", "dtype"):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if getattr(args, "no_model", False):
        values["load_model"] = False
    return Settings(**values)


def _add_server_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (FEATUREBOARD_HOST)")
    p.add_argument("--port", type=int, help="port (FEATUREBOARD_PORT)")
    p.add_argument("--database-url", help="SQLAlchemy URL (FEATUREBOARD_DATABASE_URL)")
    p.add_argument("--data-dir", type=Path, help="data folder (FEATUREBOARD_DATA_DIR)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (FEATUREBOARD_DEVICE)")
    p.add_argument("--dtype", help="float32, float16, bfloat16 or auto (FEATUREBOARD_DTYPE)")
    p.add_argument("--no-model", action="store_true", help="serve pages only: no model, no live work")
    p.add_argument("--get", metavar="PATH", help="perform one GET in-process, print the body, exit non-zero on non-200")


def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="serve the shipped offline demo (precomputes it on first start)")
    _add_server_arguments(p)
    p.add_argument("--tokens", type=int, metavar="N",
                   help="on first start, precompute only the first N held-out tokens (default: all, about 343,000)")
    p.set_defaults(func=cmd_demo, demo_command=None, check=False)
    demo_sub = p.add_subparsers(dest="demo_command")
    b = demo_sub.add_parser("build", help="rebuild the demo model and SAEs from fixed seeds (about 25 min)")
    b.add_argument("--check", action="store_true", help="rebuild in a scratch folder and compare sha256 with the shipped files")
    b = demo_sub.add_parser("build-labels", help="precompute the demo in a scratch database, draft and score a label "
                            "for every alive feature, and write the shipped scores (about 15 min on 2 cores)")
    b.add_argument("--out", help="where to write (default: app/demo/artifacts/label_scores.json.gz)")

    p = sub.add_parser("serve", help="serve the dashboard over the configured database")
    _add_server_arguments(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("settings", help="print every setting with its current value and documentation")
    p.add_argument("--markdown", action="store_true", help="print the README's settings table")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser("db", help="run database migrations")
    p.add_argument("db_command", choices=["upgrade", "downgrade"])
    p.add_argument("revision", nargs="?")
    p.add_argument("--database-url")
    p.set_defaults(func=cmd_db)


def cmd_settings(args: argparse.Namespace) -> int:
    from app.config import settings_table

    if args.markdown:
        print("| Variable | Default | What it does |\n|---|---|---|")
        for env, default, desc in settings_table():
            print(f"| `{env}` | `{default}` | {desc} |")
        return 0
    current = settings_from(args).public_dict()
    width = max(len(env) for env, _, _ in settings_table())
    for env, default, desc in settings_table():
        name = env.removeprefix("FEATUREBOARD_").lower()
        print(f"{env:<{width}}  = {current.get(name)!r}")
        print(f"{'':<{width}}    {desc} (default {default})")
    return 0


def serve(settings, get: str | None = None, first_start=None) -> int:
    """Serve ``settings``' database. ``first_start``: (preparation, start(ctx)) of a job to run in the background
    while the pages show its progress (the demo's first precompute); the address is printed before it starts."""
    from app.http.app import create_app
    from app.services.secret_key import resolve_secret_key

    key = resolve_secret_key(settings)
    if key.created:
        print(f"Generated a session secret in {key.origin} (mode 0600); keep it to keep logins across restarts.",
              file=sys.stderr, flush=True)
    preparation, start = first_start or (None, None)
    app = create_app(settings.model_copy(update={"secret_key": key.value}), preparation=preparation,
                     start_preparation=start)
    if get:
        from fastapi.testclient import TestClient

        with TestClient(app) as client:
            response = client.get(get)
        print(response.text)
        if response.status_code != 200:
            print(f"GET {get} returned {response.status_code}", file=sys.stderr)
            return 1
        return 0
    import uvicorn

    print(f"Featureboard at http://{settings.host}:{settings.port}", flush=True)
    if preparation is not None:
        print(f"{preparation.title}: the page at that address shows the progress until it is done.", flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    if preparation is not None and preparation.state == "running":
        print("demo: stopped before the first start finished; run the same command again to continue where it "
              "stopped", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    return serve(settings_from(args), get=args.get)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.demo_command == "build":
        from app.ml import demo_build

        if args.check:
            return 0 if demo_build.check() else 1
        demo_build.build()
        return 0
    if args.demo_command == "build-labels":
        from app.services.autolabel.background import build_demo_label_scores

        counts = build_demo_label_scores(args.out)
        print(", ".join(f"{name}: {n} scored drafts" for name, n in counts.items()))
        return 0
    settings = settings_from(args, demo=True)
    from app.services import startup

    if args.tokens is not None and args.tokens < 128:
        from app.errors import Invalid

        raise Invalid(f"--tokens {args.tokens}: the demo needs at least one context of 128 tokens (use 128 or more)")
    if args.get:  # one request in-process: prepare first (bars on stderr), then answer it
        startup.ensure_demo_database(settings, n_tokens=args.tokens)
        return serve(settings, get=args.get)
    if startup.demo_is_precomputed(settings):
        return serve(settings)
    # First start: the address is printed at once; pages show the progress until the data is ready.
    preparation = startup.demo_preparation(settings)
    return serve(settings, first_start=(
        preparation, lambda ctx: startup.prepare_demo_in_background(ctx, preparation, n_tokens=args.tokens)))


def cmd_db(args: argparse.Namespace) -> int:
    from app.store.engine import downgrade_database, upgrade_database

    url = settings_from(args).resolved_database_url
    if args.db_command == "upgrade":
        upgrade_database(url, args.revision or "head")
    else:
        downgrade_database(url, args.revision or "base")
    print(f"database {args.db_command}d to {args.revision or ('head' if args.db_command == 'upgrade' else 'base')}: {url}")
    return 0
