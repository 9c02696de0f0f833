"""Spreadsheet imports (issue #20 item 2, docs/decisions/0032-imports.md): reading an upload,
checking or submitting each of its documents through the write route's own decoder and
command, and the jobs that record how far they got.

A dry run decides every document exactly as the command would - the same decoder, the same
decision on the ledger as it stands - but saves nothing: the ledger's `_outcomes` (where every
command runs) is replaced by one that decides and drops the decision, and the buyers' vault
by one that seals nothing (a dry run makes no buyer key). A real run submits each document
with the Idempotency-Key `domain.imports.row_key(kind, sha256, row)` under the caller's
principal: a second upload of the same file replays every answer and writes nothing. Before
either, each document's content key (`domain.imports.content_keys`: the request it becomes,
its kind and the caller's party) is looked up among those accepted by earlier imports: a
document found there is reported `already_imported` (the earlier import and row) and not
submitted again, so a corrected file uploaded whole adds only the rows that did not go in.
"""

from __future__ import annotations

import codecs
import copy
import csv
import io
import logging
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from api.http import decode_body
from api.imports_store import ImportStore
from api.problems import HttpProblem, from_http_problem, from_ledger_error
from domain import imports as im
from domain.declaration import SubmitDeclaration
from domain.errors import LedgerError, Unavailable
from domain.events import Actor
from domain.idempotency import IdempotentRequest
from domain.movement_kinds import KINDS as MOVEMENT_KINDS
from domain.movement_kinds import MovementBody
from domain.standalone_checklists import FileChecklist
from ledger.commands import Ledger
from ledger.requests import Idempotency, Outcome
from ledger.requests import Prepared as PreparedCommand
from ledger.unit_of_work import CommandUnitOfWork

log = logging.getLogger("customs_ledger.imports")

MAX_FILE_BYTES = 10 * 1024 * 1024
# An XLSX is a zip: what it may unpack to (a zip bomb is refused before openpyxl reads it).
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
# Files of at most this many documents are done before the POST answers; bigger ones in the
# background (the answer says `running`; GET /v1/imports/{id} follows them).
SYNC_DOCUMENTS = 200
SAVE_EVERY = 200  # results saved together
SAVE_SECONDS = 1.0  # ... or this often, which is also the job's heartbeat
STALE_SECONDS = 30.0  # a running job not saved for this long was stopped with its server
BUSY_ATTEMPTS = 5
# Documents of one real run in flight at once (their commits shared).
WORKERS = 8

Outcome_ = Literal["accepted", "replayed", "refused", "already_imported"]


class RowError(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An error of one row: its sheet row, the column's header as the file wrote it (null:
    the document as a whole), the body path as the route names it, the message."""

    row: int
    column: str | None
    loc: str
    msg: str
    rule: str | None = None


class EarlierRow(msgspec.Struct, kw_only=True):
    """Where a document already imported went in: an earlier import and its row there."""

    import_id: str
    row: int


class RowResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One document of the file: `row` its first row, `rows` all of them. `outcome`:
    `accepted` (a dry run: would be), `replayed` (submitted before, by this file: the first
    answer again, nothing written), `already_imported` (the same document went in by an
    earlier import, `earlier` says which and where; not submitted again, `status` 200,
    `detail` says so), `refused` (`status` and `errors` say why). `id`, `number` (a
    declaration's `declaration_no`, a checklist's `checklist_no`; a dry run's only when
    replayed) and `document_status` are the route's answer's (already imported: the earlier
    answer's `id` and `number`); a movement's `id` is its `movement_id`."""

    row: int
    rows: list[int]
    outcome: Outcome_
    status: int
    id: str | None = None
    number: str | None = None
    document_status: str | None = None
    earlier: EarlierRow | None = None
    detail: str | None = None
    errors: list[RowError] = msgspec.field(default_factory=list)


class ResultPage(msgspec.Struct, kw_only=True):
    items: list[RowResult]
    next_cursor: str | None


class ImportJob(msgspec.Struct, kw_only=True):
    """An import as it stands. `rows`: the file's rows of data; `documents`: what they make
    (rows with the same grouping value are one document); `done`: documents decided so far,
    `accepted + replayed + already_imported + refused` of them."""

    id: str
    kind: str
    dry_run: bool
    status: Literal["running", "done", "interrupted"]
    file_name: str | None
    sha256: str
    rows: int
    documents: int
    done: int = 0
    accepted: int = 0
    replayed: int = 0
    already_imported: int = 0
    refused: int = 0
    created_at: str
    finished_at: str | None = None
    detail: str | None = None


class ImportAnswer(ImportJob, kw_only=True):
    """An import and a page of its documents' results (`?outcome=`, `?limit=`, `?cursor=`)."""

    results: ResultPage


class ImportUpload(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The JSON form of an upload (multipart is the usual one): the file in base64."""

    kind: str
    file: str
    dry_run: bool = False
    file_name: str | None = None


_ENCODE = msgspec.json.Encoder(decimal_format="string")
_JOB = msgspec.json.Decoder(ImportJob)
_RESULT = msgspec.json.Decoder(RowResult)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# -- reading the file ---------------------------------------------------------------------------


class UploadProblem(HttpProblem):
    """A bad upload: 413 or 422 naming the field (`$.file`, `$.kind`, `$.dry_run`)."""

    def __init__(self, loc: str, msg: str, status: int = 422) -> None:
        title = "Payload too large" if status == 413 else "Invalid content"
        kind = "too-large" if status == 413 else "validation"
        super().__init__(status, kind, title, f"{loc}: {msg}", errors=[{"loc": loc, "msg": msg}])


def kind_of(name: str) -> im.Kind:
    found = im.KINDS.get(name)
    if found is None:
        msg = im.message("unknown_kind", kind=name, kinds=", ".join(im.KINDS))
        raise UploadProblem("$.kind", msg)
    return found


def sniff(data: bytes) -> Literal["xlsx", "csv"]:
    """By content, never by name: a zip holding `xl/workbook.xml` is XLSX; text that reads as
    UTF-8 (with or without a byte order mark) or GB18030 without NUL characters is CSV."""
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise UploadProblem("$.file", im.message("old_excel"))
    if _text(data) is None:
        raise UploadProblem("$.file", im.message("not_a_spreadsheet"))
    return "csv"


def _text(data: bytes) -> str | None:
    """The CSV's text: UTF-8 after a BOM, else UTF-8, else GB18030 (Chinese Excel's default
    "CSV" encoding, GBK's superset); None when neither reads it or it holds NUL characters."""
    if data.startswith(codecs.BOM_UTF8):
        candidates: tuple[str, ...] = ("utf-8-sig",)
    else:
        candidates = ("utf-8", "gb18030")
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return None if "\x00" in text else text
    return None


def sheet_rows(data: bytes) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(row number as the sheet shows it, its values) of the first worksheet or the CSV."""
    if sniff(data) == "csv":
        text = _text(data)
        assert text is not None
        first = text.split("\n", 1)[0]
        delimiter = "\t" if "\t" in first and "," not in first else ","
        for number, values in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1):
            yield number, tuple(values)
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
        unpacked = sum(i.file_size for i in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as e:
        raise UploadProblem("$.file", im.message("unreadable_xlsx", why=str(e))) from None
    if "xl/workbook.xml" not in names:
        raise UploadProblem("$.file", im.message("not_a_spreadsheet"))
    if unpacked > MAX_UNPACKED_BYTES:
        raise UploadProblem(
            "$.file", im.message("too_large", size=unpacked, limit=MAX_UNPACKED_BYTES), 413
        )
    import openpyxl  # type: ignore[import-untyped]  # no type hints: Any here

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds on a damaged workbook
        raise UploadProblem(
            "$.file", im.message("unreadable_xlsx", why=str(e) or type(e).__name__)
        ) from None
    try:
        sheet = book.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
            yield number, tuple(values)
    finally:
        book.close()


@dataclass
class Sheet:
    """An upload read: its documents, by the kind's grouping column."""

    kind: im.Kind
    sha256: str
    rows: int
    documents: list[im.Document]
    header: im.Header


def read_upload(kind: im.Kind, data: bytes) -> Sheet:
    """The file's header matched and its rows of data gathered into documents; a problem at
    `$.file` when it is not a spreadsheet, has no usable header, no rows or too many."""
    if len(data) > MAX_FILE_BYTES:
        raise UploadProblem(
            "$.file", im.message("too_large", size=len(data), limit=MAX_FILE_BYTES), 413
        )
    if not data:
        raise UploadProblem("$.file", im.message("missing_file"))
    header: im.Header | None = None
    rows: list[tuple[int, dict[str, Any]]] = []
    for number, values in sheet_rows(data):
        cut = len(values)
        while cut and im.blank(values[cut - 1]):
            cut -= 1
        if cut > im.MAX_COLUMNS:
            raise UploadProblem("$.file", im.message("too_many_columns", limit=im.MAX_COLUMNS))
        if cut == 0:
            continue
        if header is None:
            try:
                header = im.read_header(kind, values[:cut])
            except im.HeaderProblem as e:
                raise UploadProblem("$.file", str(e)) from None
            continue
        cells = {
            column.name: value
            for column, value in zip(header.columns, values, strict=False)
            if column is not None and not im.blank(value)
        }
        if not cells:
            continue
        if len(rows) >= im.MAX_ROWS:
            raise UploadProblem("$.file", im.message("too_many_rows", limit=im.MAX_ROWS))
        rows.append((number, cells))
    if header is None:
        raise UploadProblem("$.file", im.message("no_header", kind=kind.name))
    if not rows:
        raise UploadProblem("$.file", im.message("no_rows"))
    return Sheet(kind, im.file_digest(data), len(rows), im.documents(kind, rows), header)


# -- deciding one document ----------------------------------------------------------------------

Submit = Callable[[Ledger, Any, Actor, Idempotency], Outcome]


@dataclass(frozen=True)
class Route:
    """A write route as an import submits to it: the body type its decoder reads (a Struct,
    or the tagged union of movements), its command, and the answer's fields an import
    result shows (`id`, the document's number)."""

    body: Any
    submit: Submit
    id_field: str = "id"
    number_field: str | None = None


ROUTES: dict[str, Route] = {
    "/v1/declarations": Route(
        SubmitDeclaration,
        lambda ledger, cmd, actor, idem: ledger.submit_declaration(cmd, actor, idem),
        number_field="declaration_no",
    ),
    "/v1/checklists": Route(
        FileChecklist,
        lambda ledger, cmd, actor, idem: ledger.file_checklist(cmd, actor, idem),
        number_field="checklist_no",
    ),
    "/v1/movements": Route(
        MovementBody,
        lambda ledger, cmd, actor, idem: ledger.record_movement(cmd, actor, idem),
        id_field="movement_id",
    ),
}
# A movement kind refused to the caller's role (domain/movement_kinds.py `check_recorder`)
# has no field in its refusal; it is the kind's, so the row's `kind` column.
_REFUSAL_LOCS = {spec.rules.refusal: "$.kind" for spec in MOVEMENT_KINDS.values()}


class _SealsNothing:
    """The buyers' vault of a dry run: pseudonyms as the real one makes them, tokens that
    are never kept (no buyer key is made)."""

    def __init__(self, vault: Any) -> None:
        self.vault = vault

    def pseudonym(self, resident_id: str) -> str:
        return str(self.vault.pseudonym(resident_id))

    def seal(self, resident_id: str, values: dict[str, str]) -> dict[str, str]:
        return {name: "dry-run" for name in values}


def dry_ledger(ledger: Ledger) -> Ledger:
    """The ledger's commands, deciding on the ledger as it stands and saving nothing: a
    retry of a key already used answers its record, as the command would."""
    dry = copy.copy(ledger)
    dry.vault = _SealsNothing(ledger.vault)  # type: ignore[assignment]

    def outcomes(prepared: list[PreparedCommand]) -> list[Outcome | BaseException]:
        # Every command runs through here (`Ledger._outcomes`): each decided as the decider
        # would (on committed and pending state, under the lock the committer settles
        # under), its events dropped. A key already used answers its record, as a retry does.
        app = ledger.app
        results: list[Outcome | BaseException] = []
        for one in prepared:
            with app._command_lock:
                uow = CommandUnitOfWork(app, None)
                try:
                    decision = one.command.decide(uow)
                except LedgerError as e:
                    results.append(e)
                    continue
            answer = decision.answer
            if isinstance(answer, IdempotentRequest):
                results.append(Outcome(answer.status_code, answer.response, None, replayed=True))
            else:
                results.append(Outcome(one.status_code, answer, None))
        return results

    dry._outcomes = outcomes  # type: ignore[method-assign]
    return dry


def _errors(sheet: Sheet, prepared: Prepared, problem: Any) -> list[RowError]:
    """A refusal's field errors at their rows and columns (the detail when it has none)."""
    fields = problem.errors or [{"loc": _loc_in(problem.detail), "msg": problem.detail}]
    return [_row_error(sheet, prepared, e["loc"], e["msg"], e.get("rule")) for e in fields]


def _row_error(
    sheet: Sheet, prepared: Prepared, loc: str, msg: str, rule: str | None = None
) -> RowError:
    row, name = im.locate(sheet.kind, prepared.doc, loc, prepared.built.places)
    return RowError(
        row=row,
        column=sheet.header.written.get(name) if name else None,
        loc=loc,
        msg=msg,
        rule=rule,
    )


def _loc_in(detail: str) -> str:
    """A refusal without field errors that names its field first (`$.declarant must be ...`),
    or one whose field is known (a movement kind the role may not record: `$.kind`)."""
    head = detail.split(" ", 1)[0]
    return head if head.startswith("$.") else _REFUSAL_LOCS.get(detail, "$")


@dataclass
class Prepared:
    """A document made ready before any is decided: its body built and decoded as the route
    decodes it (`cmd`), or its refusal; its content key and, when an earlier import accepted
    the same content, where (`earlier`: import id, row, principal, Idempotency-Key, result)."""

    doc: im.Document
    built: im.Built
    cmd: Any = None
    refusal: RowResult | None = None
    content: str | None = None
    earlier: Earlier | None = None


@dataclass(frozen=True)
class Earlier:
    import_id: str
    row: int
    principal: str
    key: str
    result: RowResult | None


def prepare(sheet: Sheet, actor: Actor, store: ImportStore) -> list[Prepared]:
    """Every document's body, decoded by its route's decoder (a refusal when it does not
    decode or its rows do not fit), its content key, and the earlier import of the same
    content by the caller's party, looked up at once for the whole file."""
    route = ROUTES[sheet.kind.path]
    prepared: list[Prepared] = []
    for doc in sheet.documents:
        built = im.body_of(sheet.kind, doc)
        p = Prepared(doc, built)
        if built.errors:
            written = sheet.header.written
            errors = [
                RowError(
                    row=e.row,
                    column=written.get(e.column) if e.column else None,
                    loc=e.loc,
                    msg=e.msg,
                    rule=e.rule,
                )
                for e in built.errors
            ]
            p.refusal = _result(p, "refused", 422, errors=errors)
        else:
            try:
                p.cmd = decode_body(_ENCODE.encode(built.body), route.body)
            except LedgerError as e:
                p.refusal = _refused(sheet, p, from_ledger_error(e))
            except HttpProblem as e:
                p.refusal = _refused(sheet, p, from_http_problem(e))
        prepared.append(p)
    keys = im.content_keys(sheet.kind.name, im.party_of(actor), (p.cmd for p in prepared))
    found = store.contents([k for k in keys if k is not None])
    for p, key in zip(prepared, keys, strict=True):
        p.content = key
        if key is not None and key in found:
            import_id, row, principal, idem_key, result = found[key]
            earlier = _RESULT.decode(result) if result else None
            p.earlier = Earlier(import_id, row, principal, idem_key, earlier)
    return prepared


def decide_document(
    ledger: Ledger,
    sheet: Sheet,
    prepared: Prepared,
    actor: Actor,
    *,
    wake: Callable[[int | None], None],
    dry: bool = False,
) -> RowResult:
    """One document through the route's command (`ledger` a dry one for a dry run):
    accepted, replayed, already imported (the same content accepted by an earlier import
    under another key: not submitted) or refused with its errors at rows and columns."""
    if prepared.refusal is not None:
        return prepared.refusal
    sheet_key = im.row_key(sheet.kind.name, sheet.sha256, prepared.doc.row)
    earlier = prepared.earlier
    if earlier is not None and (earlier.principal, earlier.key) != (actor.name, sheet_key):
        # The same file again (its key and principal) replays below instead.
        before = earlier.result
        return _result(
            prepared,
            "already_imported",
            200,
            id=before.id if before else None,
            number=before.number if before else None,
            earlier=EarlierRow(import_id=earlier.import_id, row=earlier.row),
            detail=im.message("already_imported", row=earlier.row, import_id=earlier.import_id),
        )
    route = ROUTES[sheet.kind.path]
    idem = Idempotency(principal=actor.name, key=sheet_key, method="POST", path=sheet.kind.path)
    for attempt in range(BUSY_ATTEMPTS):
        try:
            outcome = route.submit(ledger, prepared.cmd, actor, idem)
        except Unavailable as e:
            if attempt + 1 < BUSY_ATTEMPTS:
                time.sleep(e.retry_after * (attempt + 1))
                continue
            problem = from_ledger_error(Unavailable(im.message("busy")))
            return _refused(sheet, prepared, problem)
        except LedgerError as e:
            return _refused(sheet, prepared, from_ledger_error(e))
        except HttpProblem as e:
            return _refused(sheet, prepared, from_http_problem(e))
        wake(outcome.position)
        answer = (
            outcome.body if isinstance(outcome.body, dict) else msgspec.to_builtins(outcome.body)
        )
        number = answer.get(route.number_field) if route.number_field else None
        found = answer.get(route.id_field)
        return _result(
            prepared,
            "replayed" if outcome.replayed else "accepted",
            outcome.status_code,
            id=str(found) if found is not None else None,
            # A dry run's number is only the one the series would give next.
            number=None if dry and not outcome.replayed else number,
            document_status=answer.get("status"),
        )
    raise AssertionError("unreachable")


def _result(prepared: Prepared, outcome: Outcome_, status: int, **fields: Any) -> RowResult:
    doc = prepared.doc
    return RowResult(row=doc.row, rows=list(doc.rows), outcome=outcome, status=status, **fields)


def _refused(sheet: Sheet, prepared: Prepared, problem: Any) -> RowResult:
    return _result(prepared, "refused", problem.status, errors=_errors(sheet, prepared, problem))


# -- jobs -------------------------------------------------------------------------------------


@dataclass
class Run:
    """One import being done in this process."""

    job: ImportJob
    sheet: Sheet
    actor: Actor
    pending: list[RowResult] = field(default_factory=list)
    # The content keys of documents accepted since the last save: (key, row, principal,
    # Idempotency-Key), saved with their results.
    contents: list[tuple[str, int, str, str]] = field(default_factory=list)
    saved_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Owner:
    """Who may read a job besides customs: its enterprise, or its operators' zone."""

    enterprise: str | None
    zone: str | None


class Imports:
    """The imports of one server process: their store, and the background pool that does
    the big ones (one at a time per worker, in file order)."""

    def __init__(
        self,
        store: ImportStore,
        ledger: Ledger,
        wake: Callable[[int | None], None],
        workers: int = 2,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.wake = wake
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import")
        self.running: set[str] = set()
        self.lock = threading.Lock()

    def start(
        self, actor: Actor, sheet: Sheet, file_name: str | None, *, dry_run: bool
    ) -> tuple[ImportJob, bool]:
        """Record a new job and do it: at once when it is small (the job answered is done),
        else in the background (it is `running`). Returns (job, done now)."""
        job = ImportJob(
            id=str(uuid.uuid4()),
            kind=sheet.kind.name,
            dry_run=dry_run,
            status="running",
            file_name=file_name,
            sha256=sheet.sha256,
            rows=sheet.rows,
            documents=len(sheet.documents),
            created_at=_now(),
        )
        run = Run(job, sheet, actor)
        self._save(run)
        with self.lock:
            self.running.add(job.id)
        if len(sheet.documents) <= SYNC_DOCUMENTS:
            self._do(run)
            return run.job, True
        self.pool.submit(self._do, run)
        return run.job, False

    def _do(self, run: Run) -> None:
        ledger = dry_ledger(self.ledger) if run.job.dry_run else self.ledger
        try:
            prepared = prepare(run.sheet, run.actor, self.store)
            for p, result in self._decided(ledger, run, prepared):
                job = run.job
                job.done += 1
                setattr(job, result.outcome, getattr(job, result.outcome) + 1)
                run.pending.append(result)
                if (
                    not job.dry_run
                    and p.content is not None
                    and result.outcome in ("accepted", "replayed")
                ):
                    key = im.row_key(run.sheet.kind.name, run.sheet.sha256, result.row)
                    run.contents.append((p.content, result.row, run.actor.name, key))
                if (
                    len(run.pending) >= SAVE_EVERY
                    or time.monotonic() - run.saved_at >= SAVE_SECONDS
                ):
                    self._save(run)
            run.job.status = "done"
        except Exception as e:  # a bug: the job says it stopped, the server goes on
            log.exception("import %s failed", run.job.id)
            run.job.status = "interrupted"
            run.job.detail = f"{type(e).__name__}: {e}"
        finally:
            run.job.finished_at = _now()
            self._save(run)
            with self.lock:
                self.running.discard(run.job.id)

    def _decided(
        self, ledger: Ledger, run: Run, prepared: list[Prepared]
    ) -> Iterator[tuple[Prepared, RowResult]]:
        """Each document's result in file order. A real run keeps WORKERS documents in flight,
        so that their writes share the store's group commits (one at a time, each document
        would wait for a commit of its own); a dry run writes nothing, so one at a time, and
        so do the kinds whose order matters (movements: `Kind.ordered`)."""

        def decide(p: Prepared) -> tuple[Prepared, RowResult]:
            result = decide_document(
                ledger, run.sheet, p, run.actor, wake=self.wake, dry=run.job.dry_run
            )
            return p, result

        if run.job.dry_run or run.sheet.kind.ordered or len(prepared) == 1:
            yield from map(decide, prepared)
            return
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="import-row") as pool:
            yield from pool.map(decide, prepared)

    def _save(self, run: Run) -> None:
        results = [(r.row, r.outcome, _ENCODE.encode(r)) for r in run.pending]
        actor = run.actor
        self.store.save(
            run.job.id,
            actor.enterprise,
            actor.name,
            _ENCODE.encode(run.job),
            results,
            contents=run.contents,
            zone=actor.zone if actor.role == "operator" else None,
        )
        run.pending = []
        run.contents = []
        run.saved_at = time.monotonic()

    def get(self, job_id: str) -> tuple[Owner, ImportJob] | None:
        """(who owns it, the job); a running job that nobody has saved for STALE_SECONDS
        was stopped with its server: `interrupted`."""
        found = self.store.job(job_id)
        if found is None:
            return None
        enterprise, zone, text, updated = found
        job = _JOB.decode(text)
        with self.lock:
            here = job_id in self.running
        if job.status == "running" and not here and time.time() - updated > STALE_SECONDS:
            job.status = "interrupted"
            job.detail = im.message("interrupted")
        return Owner(enterprise, zone), job

    def results(self, job_id: str, after: int, limit: int, outcome: str | None) -> list[RowResult]:
        return [
            _RESULT.decode(text) for _, text in self.store.results(job_id, after, limit, outcome)
        ]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()


def answer(job: ImportJob, results: Sequence[RowResult], limit: int) -> ImportAnswer:
    next_cursor = str(results[-1].row) if len(results) == limit else None
    fields = msgspec.structs.asdict(job)
    return ImportAnswer(**fields, results=ResultPage(items=list(results), next_cursor=next_cursor))
