"""`featureboard users ...` and `featureboard labels export|import`.

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


def _context(args: argparse.Namespace):
    from app.config import Settings
    from app.services.context import Context

    values = {k: getattr(args, k) for k in ("database_url", "data_dir") if getattr(args, k, None) is not None}
    return Context.open(Settings(**values))


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        from app.errors import Invalid

        raise Invalid("the two passwords differ")
    return first


def add_commands(sub) -> None:
    p = sub.add_parser("users", help="manage accounts")
    add_users_arguments(p)
    p.set_defaults(func=users_main)
    p = sub.add_parser("labels", help="export or import labels (JSONL, Neuronpedia format)")
    add_labels_io_arguments(p)
    p.set_defaults(func=labels_io_main)


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

    ctx = _context(args)
    try:
        with ctx.sessionmaker() as session:
            if args.users_command == "create":
                role = "admin" if args.admin else args.role
                actor = svc.create_account(session, args.username, _read_password(args), role)
                print(f"created {actor.role} account {actor.username!r} (id {actor.id})")
            elif args.users_command == "list":
                for a in svc.list_accounts(session):
                    print(f"{a['id']}\t{a['role']}\t{a['username']}")
            elif args.users_command == "set-role":
                svc.set_role_by_name(session, args.username, args.role)
                print(f"{args.username!r} is now {args.role}")
            else:
                svc.set_password_by_name(session, args.username, _read_password(args))
                print(f"password of {args.username!r} changed")
    finally:
        ctx.close()
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
    from app.errors import Invalid
    from app.services import labels as labels_svc
    from app.services import labels_io as io

    ctx = _context(args)
    try:
        with ctx.sessionmaker() as session:
            if args.labels_command == "export":
                source_id = labels_svc.resolve_source(session, args.source).id if args.source else None
                _export(io, session, source_id, args)
                return 0
            stream = sys.stdin if str(args.file) == "-" else args.file.open(encoding="utf-8")
            with stream:
                report = io.import_jsonl(session, stream)
    finally:
        ctx.close()
    for error in report["errors"]:
        print(f"{args.file}: {error}", file=sys.stderr)
    if report["errors"]:
        raise Invalid(f"{len(report['errors'])} bad lines; nothing imported")
    print(f"imported {report['labels_added']} labels, {report['revisions_added']} revisions, "
          f"{report['votes_added']} votes, {report.get('assignments_added', 0)} assignments; created {report['accounts_created']} accounts "
          f"({report['lines']} lines read)")
    return 0


def _export(io, session, source_id: int | None, args: argparse.Namespace) -> None:
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
