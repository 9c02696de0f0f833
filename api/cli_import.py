"""`customs-ledger import FILE --kind KIND [--dry-run]`: a spreadsheet through POST /v1/imports.

The command is a client of a running server (`--url`, the token in LEDGER_TOKEN or --token),
never a second way into the database: the server decides who may import what from the
token, as for any request, and does the import (docs/decisions/0032-imports.md). It uploads
the file, follows the job with a progress bar on stderr (documents done of all, their rate),
then prints a summary and every refused document's errors (row, column, message) on stdout.
The bar is redrawn in place when stderr is a terminal, and written once, at the end, when not.
What it prints is in the command's language (api/i18n.py `say`), and it asks the server for
its messages (a refusal, a row's errors) in that language too (`Accept-Language`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from api.i18n import command_language, say
from api.settings import Settings

DESCRIPTION = """\
Import an XLSX workbook (its first sheet) or a CSV file (UTF-8, with or without a BOM, or
GB18030) of declarations, retail lists or checklists through a running server's POST
/v1/imports, with a progress bar on stderr. --dry-run checks every row as the API would and
writes nothing. Templates: GET /v1/imports/templates/{kind}.xlsx. The same file uploaded
again writes nothing (its rows' Idempotency-Keys come from the file's SHA-256)."""
EPILOG = """\
exit codes: 0 every document accepted (or, uploaded before, replayed); 1 some refused (each
listed with its row, column and message); 2 bad arguments, an unreadable file, the upload
refused or the server unreachable; 3 the import was interrupted (run the same command again:
the rows done are not written twice)."""
POLL_SECONDS = 0.5
# The operating system's words the command quotes when the server cannot be reached, as
# templates for the catalog (api/i18n_extract.py reads this tuple).
QUOTED_MESSAGES = (
    "[Errno {errno}] Connection refused",
    "timed out",
    "[Errno -2] Name or service not known",
)


def configure(sub: Any) -> None:
    parser = sub.add_parser(
        "import",
        help="import a spreadsheet of declarations, retail lists or checklists (HTTP API)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--kind",
        required=True,
        choices=("declarations", "retail_lists", "checklists", "movements"),
    )
    parser.add_argument("--dry-run", action="store_true", help="check only, write nothing")
    parser.add_argument(
        "--url",
        default=os.environ.get("LEDGER_URL", "http://127.0.0.1:8000"),
        help="the server (default: LEDGER_URL or http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--token", help="an enterprise key's token (default: LEDGER_TOKEN; keeps it out of ps)"
    )


def _err(*parts: object) -> None:
    print(*parts, file=sys.stderr)


def _request(
    url: str, token: str, *, data: bytes | None = None, content_type: str | None = None
) -> tuple[int, Any, dict[str, str]]:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        # The server's messages (a refusal, a row's errors) in the command's language.
        "Accept-Language": command_language(),
    }
    if content_type:
        headers["Content-Type"] = content_type
    method = "POST" if data else "GET"
    # The scheme is checked by cmd_import: http or https only.
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as e:
        try:
            body = json.loads(e.read())
        except ValueError:
            body = {"detail": str(e)}
        return e.code, body, dict(e.headers or {})


def _multipart(fields: dict[str, str], name: str, data: bytes) -> tuple[bytes, str]:
    boundary = f"----customs-ledger-{uuid.uuid4().hex}"
    parts = []
    for key, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    quoted = name.replace('"', "%22")
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _bar(done: int, total: int, started: float) -> str:
    width = 30
    filled = width * done // total if total else width
    rate = done / max(time.monotonic() - started, 1e-6)
    bar = f"[{'#' * filled}{'-' * (width - filled)}]"
    line = say(
        "{bar} {done:,}/{total:,} documents  {rate:,.0f}/s",
        bar=bar,
        done=done,
        total=total,
        rate=rate,
    )
    return f"\r{line}"


def _problem(status: int, body: Any) -> None:
    # The server wrote its detail in the language asked (Accept-Language): quoted as it is.
    detail = body.get("detail", "") if isinstance(body, dict) else body
    _err(say("import: refused ({status}): {said}", status=status, said=detail))
    for e in (body.get("errors") or []) if isinstance(body, dict) else []:
        _err(f"  {e.get('loc')}: {e.get('msg')}")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    token = args.token or os.environ.get("LEDGER_TOKEN")
    if not token:
        _err(say("import: give a token: LEDGER_TOKEN=... or --token"))
        return 2
    try:
        data = args.file.read_bytes()
    except OSError as e:
        _err(say("import: {file}: {detail}", file=args.file, detail=str(e.strerror or e)))
        return 2
    base = args.url.rstrip("/")
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        _err(say("import: --url {url}: an http:// or https:// address", url=base))
        return 2
    body, content_type = _multipart(
        {"kind": args.kind, "dry_run": "true" if args.dry_run else "false"}, args.file.name, data
    )
    started = time.monotonic()
    try:
        status, job, headers = _request(
            f"{base}/v1/imports", token, data=body, content_type=content_type
        )
        if status != 201:
            _problem(status, job)
            return 2
        location = headers.get("Location") or f"/v1/imports/{job['id']}"
        # The bar is redrawn in place on a terminal; elsewhere (a log, a pipe) only its last
        # state is written, once.
        live = sys.stderr.isatty()
        while True:
            if live or job["status"] != "running":
                bar = _bar(job["done"], job["documents"], started)
                print(bar if live else bar.lstrip("\r"), end="", file=sys.stderr, flush=True)
            if job["status"] != "running":
                break
            time.sleep(POLL_SECONDS)
            status, job, _ = _request(base + location, token)
            if status != 200:
                _err()
                _problem(status, job)
                return 2
        _err()
        refused = _refused(base + location, token)
    except (urllib.error.URLError, OSError) as e:
        _err("\n" + say("import: {url}: {detail}", url=base, detail=str(getattr(e, "reason", e))))
        return 2
    counts = {
        "file": args.file.name,
        "seconds": time.monotonic() - started,
        **{k: job[k] for k in ("rows", "documents", "accepted", "replayed", "refused", "id")},
        # A server from before content keys does not count them: none.
        "already": job.get("already_imported", 0),
    }
    if job["dry_run"]:
        summary = say(
            "{file}: {rows} rows, {documents} documents: {accepted} would be accepted,"
            " {replayed} replayed (this file, imported before), {already} already in (from"
            " an earlier file), {refused} refused ({seconds:.1f} s; import {id})",
            **counts,
        )
    else:
        summary = say(
            "{file}: {rows} rows, {documents} documents: {accepted} accepted, {replayed}"
            " replayed (this file, imported before), {already} already in (from an earlier"
            " file), {refused} refused ({seconds:.1f} s; import {id})",
            **counts,
        )
    print(summary)
    for result in refused:
        for error in result.get("errors", []):
            column = error.get("column") or error.get("loc")
            # The message is the server's, in the language asked.
            print(
                say(
                    "row {row}\t{column}\t{said}",
                    row=error["row"],
                    column=column,
                    said=error["msg"],
                )
            )
    if job["status"] == "interrupted":
        _err(say("import: interrupted: {said}", said=job.get("detail") or ""))
        return 3
    return 1 if job["refused"] else 0


def _refused(url: str, token: str) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    while True:
        query = {"outcome": "refused", "limit": "1000", **({"cursor": cursor} if cursor else {})}
        status, page, _ = _request(f"{url}?{urllib.parse.urlencode(query)}", token)
        if status != 200:
            return items
        items += page["results"]["items"]
        cursor = page["results"]["next_cursor"]
        if cursor is None:
            return items
