"""`featureboard users ...` and `featureboard labels export|import`, mounted by app/cli.py.

Passwords are read with getpass (or one line from stdin with --password-stdin), never from argv, never printed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from app.store.models import ROLES


def _add_db_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="SQLAlchemy URL (FEATUREBOARD_DATABASE_URL)")
    p.add_argument("--data-dir", type=Path, help="data folder (FEATUREBOARD_DATA_DIR)")


def _sessionmaker(args: argparse.Namespace):
    from app.config import Settings
    from app.store.engine import make_engine, make_sessionmaker, upgrade_database

    values = {k: getattr(args, k) for k in ("database_url", "data_dir") if getattr(args, k, None) is not None}
    url = Settings(**values).resolved_database_url
    upgrade_database(url)
    return make_sessionmaker(make_engine(url))


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("featureboard: error: the two passwords differ")
    return first


def add_users_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="users_command", required=True)
    p = sub.add_parser("create", help="create an account (asks for its password)")
    p.add_argument("username")
    role = p.add_mutually_exclusive_group()
    role.add_argument("--admin", action="store_true", help="make it an admin")
    role.add_argument("--role", choices=ROLES, default="labeler")
    p.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    _add_db_arguments(p)
    p = sub.add_parser("set-role", help="change an account's role")
    p.add_argument("username")
    p.add_argument("role", choices=ROLES)
    _add_db_arguments(p)
    p = sub.add_parser("set-password", help="set an account's password (asks for it)")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true")
    _add_db_arguments(p)
    p = sub.add_parser("list", help="list accounts")
    _add_db_arguments(p)


def users_main(args: argparse.Namespace) -> int:
    from app.services import accounts as svc
    from app.services import security
    from app.services.label_errors import LabelError
    from app.store import accounts as qa

    factory = _sessionmaker(args)
    with factory() as session:
        try:
            if args.users_command == "create":
                role = "admin" if args.admin else args.role
                actor = svc.create_account(session, args.username, _read_password(args), role)
                print(f"created {actor.role} account {actor.username!r} (id {actor.id})")
            elif args.users_command == "list":
                for a in qa.list_accounts(session):
                    print(f"{a['id']}\t{a['role']}\t{a['username']}")
            else:
                account = qa.get_account_by_username(session, args.username)
                if account is None:
                    print(f"featureboard: error: no account named {args.username!r}", file=sys.stderr)
                    return 2
                if args.users_command == "set-role":
                    qa.set_role(session, account.id, args.role)
                    print(f"{args.username!r} is now {args.role}")
                else:
                    from app.services.validate import password_field

                    qa.set_password_hash(session, account.id, security.hash_password(password_field(_read_password(args))))
                    print(f"password of {args.username!r} changed")
                session.commit()
        except LabelError as exc:
            print(f"featureboard: error: {exc.message}", file=sys.stderr)
            return 2
    return 0


def add_labels_io_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="labels_command", required=True)
    p = sub.add_parser("export", help="write labels as JSONL (with revisions, votes, authors) or Neuronpedia JSON")
    p.add_argument("--source", help="only this source (name); default all")
    p.add_argument("--format", choices=["jsonl", "neuronpedia"], default="jsonl")
    p.add_argument("-o", "--output", type=Path, help="file to write (default stdout)")
    _add_db_arguments(p)
    p = sub.add_parser("import", help="import a JSONL export; validates every line first, idempotent")
    p.add_argument("file", type=Path, help="JSONL file ('-' for stdin)")
    _add_db_arguments(p)


def labels_io_main(args: argparse.Namespace) -> int:
    from app.services import labels_io as io
    from app.store import labels as q

    factory = _sessionmaker(args)
    with factory() as session:
        if args.labels_command == "export":
            source_id = None
            if args.source:
                found = q.source_by_ref(session, args.source)
                if found is None:
                    names = ", ".join(s["name"] for s in q.list_sources(session)) or "none"
                    print(f"featureboard: error: no source {args.source!r} (sources: {names})", file=sys.stderr)
                    return 2
                source_id = found.id
            out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
            try:
                if args.format == "neuronpedia":
                    json.dump(io.export_neuronpedia(session, source_id), out, ensure_ascii=False, indent=1)
                    out.write("\n")
                else:
                    count = 0
                    for line in io.export_jsonl(session, source_id):
                        out.write(line)
                        count += 1
                    if args.output:
                        print(f"exported {count} labels to {args.output}", file=sys.stderr)
            finally:
                if args.output:
                    out.close()
            return 0
        stream = sys.stdin if str(args.file) == "-" else args.file.open(encoding="utf-8")
        with stream:
            report = io.import_jsonl(session, stream)
    for error in report["errors"]:
        print(f"{args.file}: {error}", file=sys.stderr)
    if report["errors"]:
        print(f"featureboard: error: {len(report['errors'])} bad lines; nothing imported", file=sys.stderr)
        return 2
    print(f"imported {report['labels_added']} labels, {report['revisions_added']} revisions, "
          f"{report['votes_added']} votes; created {report['accounts_created']} accounts "
          f"({report['lines']} lines read)")
    return 0
