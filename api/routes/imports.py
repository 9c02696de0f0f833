"""Spreadsheet imports (docs/imports.md, docs/decisions/0032-imports.md): upload an XLSX or CSV
of declarations, retail lists, checklists or movements, check it (dry run) or submit each of
its documents through the write route's own decoder and command, follow the job, download a
template."""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api import i18n
from api.auth import Reader
from api.http import SCHEMA_TYPES, doc, is_json, json_response, read_json
from api.imports import (
    MAX_FILE_BYTES,
    ImportAnswer,
    ImportJob,
    Imports,
    ImportUpload,
    Outcome_,
    Owner,
    RowResult,
    UploadProblem,
    answer,
    kind_of,
    read_upload,
)
from api.imports_store import ImportStore
from api.imports_template import template
from api.problems import HttpProblem
from api.routes.common import Page, services, writer
from domain import imports as im
from domain.errors import NotFound
from domain.events import Actor
from domain.movement_kinds import KINDS as MOVEMENT_KINDS

router = APIRouter(tags=["imports"])
# Who may import each kind: the roles of the route its documents go to (movements: every role
# that records some kind of movement; a row of a kind its role does not record is refused at
# that row, 403, as POST /v1/movements refuses it).
KIND_ROLES = {
    "declarations": ("enterprise",),
    "retail_lists": ("enterprise",),
    "checklists": ("enterprise",),
    "movements": tuple(sorted({s.rules.recorded_by for s in MOVEMENT_KINDS.values()})),
}
assert set(KIND_ROLES) == set(im.KINDS), "every import kind says who may import it"
UPLOADERS = tuple(sorted({r for roles in KIND_ROLES.values() for r in roles}))
# Who may read a job: its enterprise's keys, the operators of the zone whose operator uploaded
# it, and customs (officers, auditors) any.
READERS = ("enterprise", "operator", "officer", "auditor")
# The multipart or JSON envelope around the file (JSON: base64, a third larger).
MAX_REQUEST_BYTES = MAX_FILE_BYTES * 4 // 3 + 64 * 1024
UPLOAD_SECONDS = 120.0
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_STARTING = threading.Lock()

SCHEMA_TYPES.add(ImportUpload)
SCHEMA_TYPES.add(ImportAnswer)


def imports_of(request: Request) -> Imports:
    """This process's imports, made on first use (their store beside the log)."""
    state = request.app.state
    found: Imports | None = getattr(state, "imports", None)
    if found is not None:
        return found
    with _STARTING:
        found = getattr(state, "imports", None)
        if found is None:
            svc = services(request)
            store = ImportStore(svc.database, svc.app.factory.datastore)  # type: ignore[attr-defined]
            found = Imports(store, svc.ledger, svc.wrote)
            state.imports = found
    return found


def _upload_doc() -> dict[str, Any]:
    kwargs = doc(ok=(201, ImportAnswer), errors=(400, 401, 403, 413, 415, 422, 503))
    kwargs["responses"][413]["description"] = "A file over 10 MiB (`errors[].loc`: `$.file`)"
    kwargs["responses"][415]["description"] = (
        "A body that is neither multipart/form-data nor application/json"
    )
    kwargs["responses"][201]["headers"] = {
        "Location": {
            "description": "The job: GET /v1/imports/{id}",
            "required": True,
            "schema": {"type": "string"},
        }
    }
    kwargs["openapi_extra"] = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["kind", "file"],
                        "properties": {
                            "kind": {"type": "string", "enum": list(im.KINDS)},
                            "dry_run": {"type": "string", "enum": ["true", "false"]},
                            "file": {"type": "string", "format": "binary"},
                        },
                    }
                },
                "application/json": {"schema": {"$ref": "#/components/schemas/ImportUpload"}},
            },
        }
    }
    return kwargs


@router.post("/v1/imports", **_upload_doc())
async def upload(request: Request) -> Response:
    """Upload an XLSX workbook (its first sheet) or a CSV file (UTF-8 with or without a byte order
    mark, or GB18030) of `kind` `declarations`, `retail_lists`, `checklists` (enterprises) or
    `movements` (each row's movement kind by the role that records it), as
    multipart/form-data (`kind`, `dry_run`, `file`) or JSON (`file` in base64). The answer
    is the job: a dry run (`dry_run=true`) checks every document as its route would and
    writes nothing to the ledger; a real run submits each with an Idempotency-Key derived
    from the file's SHA-256 and its row, so the same file again writes nothing, and skips a
    document whose content an earlier import of the caller's enterprise (zone, key) got in
    (`already_imported`), so a corrected file uploaded whole adds only what is new. Files of
    up to 200 documents are done before the answer; bigger ones go on in the background
    (`status: running`): follow `Location`. Its `results` are the first 100 documents' (GET
    pages them, `?outcome=refused`)."""
    _, actor = await writer(request, UPLOADERS)
    upload = await _read_request(request)
    kind = kind_of(upload.kind)
    if actor.role not in KIND_ROLES[kind.name]:
        raise HttpProblem(
            403,
            "forbidden",
            "Forbidden",
            im.message("role_may_not_import", role=actor.role, kind=kind.name),
        )
    data = _file_bytes(upload.file)
    imports = imports_of(request)
    sheet = await run_in_threadpool(read_upload, kind, data)
    job, _ = await run_in_threadpool(
        imports.start, actor, sheet, upload.file_name, dry_run=upload.dry_run
    )
    first = await run_in_threadpool(imports.results, job.id, 0, 100, None)
    shown = in_language(job, first, 100)
    return json_response(shown, 201, Location=f"/v1/imports/{job.id}")


def in_language(job: ImportJob, results: list[RowResult], limit: int) -> ImportAnswer:
    """The job and its results with every message in the request's language (api/i18n.py):
    the routes' own messages as their refusals would read, the import's own
    (`domain.imports.MESSAGES`) once the catalog has them."""
    language = i18n.language()
    if language != "en":
        if job.detail:
            job = msgspec.structs.replace(job, detail=i18n.translate(job.detail, language))
        results = [
            msgspec.structs.replace(
                r,
                detail=i18n.translate(r.detail, language) if r.detail else None,
                errors=[
                    msgspec.structs.replace(e, msg=i18n.translate(e.msg, language))
                    for e in r.errors
                ],
            )
            for r in results
        ]
    return answer(job, results, limit)


class _Upload(msgspec.Struct, kw_only=True):
    kind: str
    file: bytes | str
    dry_run: bool
    file_name: str | None


async def _read_request(request: Request) -> _Upload:
    """The upload's fields from a multipart or JSON body, read to at most MAX_REQUEST_BYTES."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_REQUEST_BYTES:
        raise UploadProblem(
            "$.file", im.message("too_large", size=int(length), limit=MAX_FILE_BYTES), 413
        )
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media != "multipart/form-data" and not is_json(media):
        raise HttpProblem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            im.message("not_multipart"),
        )
    body = bytearray()
    try:
        async with asyncio.timeout(UPLOAD_SECONDS):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_REQUEST_BYTES:
                    raise UploadProblem(
                        "$.file",
                        im.message("too_large", size=len(body), limit=MAX_FILE_BYTES),
                        413,
                    )
    except TimeoutError:
        raise HttpProblem(
            408,
            "body-timeout",
            "Request timeout",
            im.message("upload_too_slow", seconds=f"{UPLOAD_SECONDS:g}"),
        ) from None
    if media != "multipart/form-data":
        read_json(bytes(body))  # 400 for a key named twice, as every JSON body
        try:
            sent = msgspec.json.decode(bytes(body), type=ImportUpload)
        except msgspec.ValidationError as e:
            raise UploadProblem(_loc_of(str(e)), str(e).split(" - at ", 1)[0]) from None
        except msgspec.DecodeError:
            raise HttpProblem(
                400, "malformed-json", "Bad request", "the body is not valid JSON"
            ) from None
        return _Upload(
            kind=sent.kind, file=sent.file, dry_run=sent.dry_run, file_name=sent.file_name
        )
    request._body = bytes(body)  # the form parser reads the body already read
    form = await request.form(max_files=1, max_fields=3, max_part_size=1024)
    kind = form.get("kind")
    if not isinstance(kind, str):
        raise UploadProblem("$.kind", im.message("kind_required", kinds=", ".join(im.KINDS)))
    dry = form.get("dry_run", "false")
    if not isinstance(dry, str) or dry.strip().lower() not in ("true", "false", "1", "0"):
        raise UploadProblem("$.dry_run", im.message("dry_run_value"))
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise UploadProblem("$.file", im.message("missing_file"))
    data = await file.read()
    return _Upload(
        kind=kind.strip(),
        file=data,
        dry_run=dry.strip().lower() in ("true", "1"),
        file_name=(file.filename or None) and str(file.filename)[:255],
    )


def _loc_of(text: str) -> str:
    loc = text.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in text else "$"
    if "missing required field" in text:
        name = text.split("`")[1]
        loc = f"{loc}.{name}"
    return loc


def _file_bytes(file: bytes | str) -> bytes:
    if isinstance(file, bytes):
        return file
    try:
        return base64.b64decode(file, validate=True)
    except (binascii.Error, ValueError):
        raise UploadProblem("$.file", im.message("not_base64")) from None


@router.get(
    "/v1/imports/{import_id}",
    **doc(ok=(200, ImportAnswer), errors=(401, 403, 404, 422)),
)
async def get_import(
    request: Request,
    import_id: str,
    actor: Reader,
    page: Annotated[Page, Depends()],
    outcome: Annotated[Outcome_ | None, Query()] = None,
) -> Response:
    """An import as it stands (`running`, `done`, or `interrupted` when its server stopped
    first: upload the same file again) and a page of its documents' results in row order;
    `?outcome=refused` lists the refused ones. Its enterprise's keys (an operator's upload:
    the operators of its zone) and customs (officers, auditors) may read it."""
    if actor.role not in READERS:
        raise HttpProblem(
            403, "forbidden", "Forbidden", f"the {actor.role} role may not use this route"
        )
    imports = imports_of(request)
    found = await run_in_threadpool(imports.get, import_id)
    if found is None or not _reads(actor, found[0]):
        raise NotFound(im.message("no_import", id=import_id))
    _, job = found
    results = await run_in_threadpool(imports.results, job.id, page.after, page.limit, outcome)
    return json_response(in_language(job, results, page.limit))


def _reads(actor: Actor, owner: Owner) -> bool:
    """An enterprise reads its own imports, an operator its zone's operators'; customs any."""
    if actor.role == "enterprise":
        return owner.enterprise is not None and owner.enterprise == actor.enterprise
    if actor.role == "operator":
        return owner.zone is not None and owner.zone == actor.zone
    return True


def _template_doc() -> dict[str, Any]:
    kwargs = doc(errors=(401, 404))
    kwargs["responses"][200] = {
        "description": "The kind's XLSX template: the headers in Chinese and English, an"
        " example row, and a sheet explaining each column",
        "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
    }
    return kwargs


@router.get("/v1/imports/templates/{kind}.xlsx", response_class=Response, **_template_doc())
def import_template(kind: str, actor: Reader) -> Response:
    """The template of `declarations`, `retail_lists`, `checklists` or `movements` (any role's
    token)."""
    found = im.KINDS.get(kind)
    if found is None:
        raise NotFound(im.message("no_template", kind=kind, kinds=", ".join(im.KINDS)))
    return Response(
        template(found),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{kind}.xlsx"'},
    )
