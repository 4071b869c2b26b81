"""Label export and import.

JSONL (one label a line, with its revisions, votes and author usernames; then one line per assignment,
``{"assignment": {source, feature_index, account, assigned_by}}``) round-trips a database's labels and who was
given which features:
import validates every line first and writes nothing when any line is wrong (errors carry line numbers); a label
whose `uid` is already present only gains the revisions and votes it lacks, so importing twice adds nothing.
Authors unknown to the target database become password-less labeler accounts (they cannot log in until an admin
sets a password).

Neuronpedia's explanation format: a JSON array of {modelId, layer, index, description, explanationModelName,
typeName, authorName}.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import IO, Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.orm import Session

from app.errors import Invalid
from app.services import audit
from app.services import validate as v
from app.services.actor import Actor
from app.store import accounts as qa
from app.store import labels as q
from app.store import sources as qs
from app.store import team as qteam


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export_jsonl(session: Session, source_id: int | None = None) -> Iterator[str]:
    """One JSON line (with trailing newline) per label, oldest first."""
    batch: list = []

    def flush(rows):
        ids = [label.id for label, _, _ in rows]
        votes = q.label_votes(session, ids)
        for label, author, source_name in rows:
            yield json.dumps({
                "uid": label.uid, "source": source_name, "feature_index": label.feature_index, "text": label.text,
                "description": label.description, "tags": list(label.tags or []), "method": label.method,
                "author": author, "version": label.version, "created_at": _iso(label.created_at),
                "updated_at": _iso(label.updated_at), "revisions": q.label_revisions(session, label.id),
                "votes": votes[label.id],
            }, ensure_ascii=False) + "\n"

    for row in q.labels_for_export(session, source_id):
        batch.append(tuple(row))
        if len(batch) == 500:
            yield from flush(batch)
            batch = []
    yield from flush(batch)
    names = {s.id: s.name for s in qs.list_sources(session)}
    for a in qteam.assignments(session, source_id):
        yield json.dumps({"assignment": {"source": names[a["source_id"]], "feature_index": a["feature_index"],
                                         "account": a["account"], "assigned_by": a["assigned_by"],
                                         "created_at": a["created_at"]}}, ensure_ascii=False) + "\n"


def export_neuronpedia(session: Session, source_id: int | None = None) -> list[dict]:
    sources = {s["id"]: s for s in qs.list_source_summaries(session)}
    out = []
    for label, author, _ in q.labels_for_export(session, source_id):
        src = sources[label.source_id]
        np_id = str(src["cfg"].get("neuronpedia_id") or "")
        model_id, _, layer = np_id.partition("/") if "/" in np_id else (src["model_name"].split("/")[-1], "", src["name"])
        auto = label.method.startswith("auto:")
        out.append({"modelId": model_id, "layer": layer, "index": str(label.feature_index),
                    "description": label.text, "explanationModelName": label.method[5:] if auto else "",
                    "typeName": label.method if auto else "human", "authorName": author})
    return out


# --- import ---------------------------------------------------------------------------------------------------

class RevisionLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    text: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    author: str
    created_at: datetime


class VoteLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str
    value: int
    created_at: datetime
    updated_at: datetime | None = None

    @field_validator("value")
    @classmethod
    def _pm_one(cls, value: int) -> int:
        if value not in (-1, 1):
            raise ValueError(f"vote value {value} is not 1 or -1")
        return value


class LabelLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uid: str = Field(min_length=1, max_length=36)
    source: str
    feature_index: int = Field(ge=0)
    text: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    method: str = "human"
    author: str
    version: int = Field(ge=1)
    created_at: datetime
    updated_at: datetime
    revisions: list[RevisionLine] = Field(min_length=1)
    votes: list[VoteLine] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "LabelLine":
        for check in (lambda: v.text_field(self.text, "text", v.MAX_LABEL, required=True),
                      lambda: v.text_field(self.description, "description", v.MAX_DESCRIPTION),
                      lambda: v.tags_field(self.tags), lambda: v.method_field(self.method),
                      lambda: v.username_field(self.author),
                      *[lambda r=r: v.username_field(r.author) for r in self.revisions],
                      *[lambda r=r: v.text_field(r.text, "revision text", v.MAX_LABEL, required=True)
                        for r in self.revisions],
                      *[lambda vote=vote: v.username_field(vote.account) for vote in self.votes]):
            try:
                check()
            except Invalid as exc:
                raise ValueError(exc.message) from None
        versions = [r.version for r in self.revisions]
        if len(set(versions)) != len(versions):
            raise ValueError(f"revision versions repeat: {versions}")
        if max(versions) != self.version:
            raise ValueError(f"version {self.version} but the newest revision is {max(versions)}")
        voters = [vote.account for vote in self.votes]
        if len(set(voters)) != len(voters):
            raise ValueError("an account votes twice on one label")
        return self


def _format_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)


class AssignmentLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=200)
    feature_index: int = Field(ge=0)
    account: str = Field(min_length=1, max_length=64)
    assigned_by: str | None = Field(None, max_length=64)
    created_at: datetime | None = None


def parse_lines(lines: Iterable[str], assignments: list | None = None) -> tuple[list[tuple[int, LabelLine]], list[str]]:
    """Label lines (and, into ``assignments`` when given, the assignment lines) with line-numbered errors."""
    parsed, errors, seen = [], [], {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not JSON ({exc.msg} at column {exc.colno})")
            continue
        if isinstance(data, dict) and "assignment" in data:
            try:
                if set(data) != {"assignment"}:
                    raise ValueError("an assignment line holds only the key 'assignment'")
                item = AssignmentLine.model_validate(data["assignment"])
            except ValidationError as exc:
                errors.append(f"line {number}: assignment: {_format_validation(exc)}")
            except ValueError as exc:
                errors.append(f"line {number}: {exc}")
            else:
                if assignments is not None:
                    assignments.append((number, item))
            continue
        try:
            line = LabelLine.model_validate(data)
        except ValidationError as exc:
            errors.append(f"line {number}: {_format_validation(exc)}")
            continue
        if line.uid in seen:
            errors.append(f"line {number}: uid {line.uid!r} already appeared on line {seen[line.uid]}")
            continue
        seen[line.uid] = number
        parsed.append((number, line))
    return parsed, errors


def import_jsonl(session: Session, stream: IO[str] | Iterable[str], actor: Actor | None = None) -> dict:
    """Validate every line, then write all of them in one transaction (or nothing, with the errors). The import
    is audited (``actor`` None: the console)."""
    assigned: list[tuple[int, AssignmentLine]] = []
    parsed, errors = parse_lines(stream, assigned)
    sources: dict[str, int | None] = {}
    for number, line in parsed + assigned:
        if line.source not in sources:
            found = qs.source_by_ref(session, line.source)
            sources[line.source] = found.id if found and found.name == line.source else None
        source_id = sources[line.source]
        if source_id is None:
            errors.append(f"line {number}: source {line.source!r} does not exist in this database")
        elif not q.features_present(session, source_id, {line.feature_index}):
            errors.append(f"line {number}: source {line.source!r} has no feature {line.feature_index}")
    report = {"lines": len(parsed) + len(assigned), "labels_added": 0, "revisions_added": 0, "votes_added": 0,
              "assignments_added": 0, "accounts_created": 0, "errors": errors}
    if errors:
        return report
    names = {line.author for _, line in parsed}
    names |= {r.author for _, line in parsed for r in line.revisions}
    names |= {vote.account for _, line in parsed for vote in line.votes}
    names |= {a.account for _, a in assigned} | {a.assigned_by for _, a in assigned if a.assigned_by}
    account_ids, report["accounts_created"] = qa.ensure_accounts(session, names)
    existing = q.label_ids_by_uid(session, [line.uid for _, line in parsed])
    for _, line in parsed:
        label_id = existing.get(line.uid)
        if label_id is None:
            label = q.insert_label(session, sources[line.source], line.feature_index, account_ids[line.author],
                                   line.text, line.description, line.tags, line.method, uid=line.uid,
                                   created_at=line.created_at, updated_at=line.updated_at, version=line.version)
            label_id, have_versions, have_voters = label.id, set(), set()
            report["labels_added"] += 1
        else:
            have_versions = q.existing_revision_versions(session, label_id)
            have_voters = q.existing_voters(session, label_id)
        for rev in line.revisions:
            if rev.version not in have_versions:
                q.insert_revision(session, label_id, rev.version, rev.text, rev.description, rev.tags,
                                  account_ids[rev.author], rev.created_at)
                report["revisions_added"] += 1
        for vote in line.votes:
            if account_ids[vote.account] not in have_voters:
                q.insert_vote_row(session, label_id, account_ids[vote.account], vote.value, vote.created_at,
                                  vote.updated_at or vote.created_at)
                report["votes_added"] += 1
    for _, a in assigned:
        report["assignments_added"] += qteam.assign(session, sources[a.source], [a.feature_index],
                                                    account_ids[a.account],
                                                    account_ids[a.assigned_by] if a.assigned_by else None)
    audit.record(session, actor, "labels_imported",
                 f"{report['labels_added']} labels, {report['revisions_added']} revisions, {report['votes_added']} "
                 f"votes, {report['assignments_added']} assignments from {report['lines']} lines; {report['accounts_created']} accounts created",
                 detail={key: n for key, n in report.items() if key != "errors"})
    session.commit()
    return report
