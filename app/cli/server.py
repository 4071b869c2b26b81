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
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="web worker processes over the one database; with N > 1 the model runs in one more process "
                        "of its own, and the workers forward live and steering requests to it")
    p.add_argument("--uds", help=argparse.SUPPRESS)  # the model process of --workers N listens here


def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="serve the shipped offline demo (precomputes it on first start)")
    _add_server_arguments(p)
    p.add_argument("--tokens", type=int, metavar="N",
                   help="on first start, precompute only the first N held-out tokens (default: all, about 343,000)")
    p.set_defaults(func=cmd_demo, demo_command=None, check=False)
    demo_sub = p.add_subparsers(dest="demo_command")
    b = demo_sub.add_parser("build", help="rebuild the demo model and SAEs from fixed seeds (about 25 min)")
    b.add_argument("--check", action="store_true", help="rebuild in a scratch folder and compare sha256 with the shipped files")
    b.add_argument("--reuse-model", action="store_true",
                   help="train only the SAEs, on the shipped model (the same bits a full build trains)")
    b = demo_sub.add_parser("build-labels", help="precompute the demo in a scratch database, draft and score a label "
                            "for every alive feature, and write the shipped scores (drafts that match the shipped "
                            "file keep its scores; scoring the 2,048 1k features took 29 min on 2 cores)")
    b.add_argument("--out", help="where to write (default: app/demo/artifacts/label_scores.json.gz)")
    b.add_argument("--rescore", action="store_true", help="score every draft again instead of keeping shipped scores")

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
                     start_preparation=start, warm=not get)
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
    settings = settings_from(args)
    if args.uds:
        return serve_model_process(settings, args.uds)
    if args.workers > 1 and not args.get:
        return serve_workers(settings, args.workers)
    if args.workers < 1:
        from app.errors import Invalid

        raise Invalid(f"--workers {args.workers}: give 1 or more worker processes")
    return serve(settings, get=args.get)


def settings_env(settings) -> dict[str, str]:
    """``settings`` as FEATUREBOARD_* variables, so that worker processes (which build their app from the
    environment) get exactly these, flags included."""
    import json

    from app.config import SECRET_FIELDS

    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if name in SECRET_FIELDS and not value:
            continue
        env[f"FEATUREBOARD_{name.upper()}"] = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return env


def serve_workers(settings, workers: int) -> int:
    """``workers`` uvicorn worker processes over the one database, plus (when the model is to be loaded) one model
    process on a Unix socket in the data folder that holds the model; the workers forward model requests to it
    (app/http/forward.py), so model work stays in one place per device however many workers serve pages."""
    import os
    import subprocess

    import uvicorn

    from app.services.secret_key import resolve_secret_key
    from app.store.engine import upgrade_database

    env = settings_env(settings)  # a generated secret key stays in its file, which every process reads
    key = resolve_secret_key(settings)
    if key.created:
        print(f"Generated a session secret in {key.origin} (mode 0600).", file=sys.stderr, flush=True)
    upgrade_database(settings.resolved_database_url)  # once, before the workers start
    model_process = None
    if settings.load_model:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        socket = str((settings.data_dir / f"model-{settings.port}.sock").resolve())
        model_process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--uds", socket],
                                         env={**os.environ, **env})
        env.update(FEATUREBOARD_LOAD_MODEL="False", FEATUREBOARD_MODEL_SOCKET=socket,
                   FEATUREBOARD_OUTPUT_EVIDENCE="False")  # background model work runs in the model process
    os.environ.update(env)
    print(f"Featureboard at http://{settings.host}:{settings.port} ({workers} workers"
          f"{', model in process ' + str(model_process.pid) if model_process else ', no model'})", flush=True)
    try:
        uvicorn.run("app.http.app:serving_app", factory=True, host=settings.host, port=settings.port,
                    workers=workers, log_level="warning")
    finally:
        if model_process is not None:
            model_process.terminate()
            try:
                model_process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                model_process.kill()
    return 0


def serve_model_process(settings, socket: str) -> int:
    """The model process of ``serve --workers N``: the same app, model loaded, on a Unix socket only."""
    import os

    import uvicorn

    from app.http.app import create_app

    if os.path.exists(socket):
        os.unlink(socket)  # left by a process that was killed
    uvicorn.run(create_app(settings.model_copy(update={"model_socket": ""}), migrate=False), uds=socket,
                log_level="warning")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.demo_command == "build":
        from app.ml import demo_build

        if args.check:
            return 0 if demo_build.check() else 1
        demo_build.build(reuse_model=args.reuse_model)
        return 0
    if args.demo_command == "build-labels":
        from app.services.autolabel.background import build_demo_label_scores

        counts = build_demo_label_scores(args.out, rescore=args.rescore)
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
