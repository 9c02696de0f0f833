"""Reference data that customs publishes, as dated and versioned events (docs/reference-data.md).

Four kinds: `exchange-rates` (one month's customs rates, CNY per unit), `tariff` (rows by HS
prefix, longest prefix wins), `positive-list` (HS prefixes allowed in cross-border retail
import) and `risk-rules` (the rule set, never its selection seed). Each kind is one stream;
each publication one `ReferencePublished` event on it, numbered per effective date (per month
for exchange rates): a second publication for the same date is a correction, with a reason, and
a new version. Nothing is ever changed in place: a declaration records the versions it was
assessed with, and an auditor asks which version was in force on a day, as known at an instant.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import msgspec

from domain import hs_nomenclature, values
from domain.errors import Conflict, ValidationFailed
from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.risk import RiskRules
from domain.values import Problems

Kind = Literal["exchange-rates", "tariff", "positive-list", "risk-rules"]
KINDS: tuple[Kind, ...] = ("exchange-rates", "tariff", "positive-list", "risk-rules")
# The kinds anyone may read; risk rules are selection criteria, read by officers and auditors.
PUBLIC_KINDS: tuple[Kind, ...] = ("exchange-rates", "tariff", "positive-list")
MAX_ROWS = 20_000  # the whole Chinese tariff has about 8,900 eight-digit lines
EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)
TEXT_LIMIT = 500


class TariffRow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The rates of one HS prefix (6 to 10 digits) as fractions (0.13 is 13%)."""

    hs_prefix: str
    tariff_rate: Decimal
    vat_rate: Decimal
    consumption_tax_rate: Decimal = Decimal(0)
    source: str | None = None


class PublishExchangeRates(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One month's customs exchange rates: CNY per unit of each currency (CNY itself is 1)."""

    month: str
    rates: dict[str, Decimal]
    source: str
    reason: str | None = None


class PublishTariff(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The tariff in force from `effective_from` until the next tariff's date."""

    effective_from: date
    rows: list[TariffRow]
    source: str
    reason: str | None = None


class PublishPositiveList(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The HS prefixes that may be imported as cross-border e-commerce retail goods."""

    effective_from: date
    hs_codes: list[str]
    source: str
    reason: str | None = None


class PublishRiskRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The risk rule set in force from `effective_from` (never with a seed: it is the ledger's)."""

    effective_from: date
    rules: RiskRules
    source: str
    reason: str | None = None


Publish = PublishExchangeRates | PublishTariff | PublishPositiveList | PublishRiskRules
BODIES: dict[Kind, type[Any]] = {
    "exchange-rates": PublishExchangeRates,
    "tariff": PublishTariff,
    "positive-list": PublishPositiveList,
    "risk-rules": PublishRiskRules,
}


class Content(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The figures of one publication, in their normal form (what the digest covers)."""

    rates: dict[str, Decimal] | None = None
    rows: list[TariffRow] | None = None
    hs_codes: list[str] | None = None
    rules: RiskRules | None = None


class TableUsed(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One published table a decision read: which version, and its digest."""

    kind: str
    effective_from: date
    version: int
    digest: str


class Publication(msgspec.Struct, frozen=True, kw_only=True):
    """One version of one kind's table for one effective date, as published."""

    kind: str
    effective_from: date
    month: str | None
    version: int
    digest: str
    content: Content
    source: str
    reason: str | None
    published_at: datetime
    published_by: str

    def used(self) -> TableUsed:
        return TableUsed(
            kind=self.kind,
            effective_from=self.effective_from,
            version=self.version,
            digest=self.digest,
        )


class ReferenceRegister(AggregateState, frozen=True, kw_only=True):
    """Every publication of one kind, in the order published."""

    kind: str
    publications: tuple[Publication, ...] = ()

    def latest(self, effective_from: date, known_at: datetime | None = None) -> Publication | None:
        """The newest version for `effective_from` (as known at `known_at`)."""
        found = None
        for p in self.known(known_at):
            if p.effective_from == effective_from:
                found = p
        return found

    def known(self, known_at: datetime | None = None) -> list[Publication]:
        return [p for p in self.publications if known_at is None or p.published_at <= known_at]

    def in_force(self, on: date, known_at: datetime | None = None) -> Publication | None:
        """The table in force on `on`: exchange rates of `on`'s month; for the other kinds the
        latest effective date on or before `on`. Always its newest version."""
        if self.kind == "exchange-rates":
            return self.latest(on.replace(day=1), known_at)
        days = {p.effective_from for p in self.known(known_at) if p.effective_from <= on}
        return self.latest(max(days), known_at) if days else None

    def current(self) -> list[Publication]:
        """The newest version of every effective date, by date."""
        newest: dict[date, Publication] = {}
        for p in self.publications:
            newest[p.effective_from] = p
        return [newest[d] for d in sorted(newest)]


class ReferencePublished(DomainEvent, frozen=True, kw_only=True):
    """Customs (or, on a fresh ledger, the system with its built-in tables) published a version
    of a reference table."""

    kind: str
    effective_from: date
    month: str | None = None
    version: int
    digest: str
    content: Content
    source: str
    reason: str | None = None

    def apply(self, state: ReferenceRegister | None) -> ReferenceRegister:
        publication = Publication(
            kind=self.kind,
            effective_from=self.effective_from,
            month=self.month,
            version=self.version,
            digest=self.digest,
            content=self.content,
            source=self.source,
            reason=self.reason,
            published_at=self.occurred_at,
            published_by=self.actor.name,
        )
        before = state.publications if state is not None else ()
        return ReferenceRegister(
            id=self.originator_id,
            version=self.originator_version,
            kind=self.kind,
            publications=(*before, publication),
        )


def register_id(kind: str) -> UUID:
    return stream_id("reference", kind)


class Published(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a publication."""

    kind: str
    version: int
    effective_from: date
    month: str | None = None
    digest: str
    corrects: int | None = None
    position: int | None = None  # the publication's place in the log, once committed


# -- checking a publication ----------------------------------------------------------------


def effective_date(body: Publish) -> tuple[date, str | None]:
    """The day a publication takes effect, and its month for exchange rates."""
    if isinstance(body, PublishExchangeRates):
        if not _is_month(body.month):
            raise ValidationFailed.at("$.month", "must be a month YYYY-MM from 2000-01 to 2099-12")
        return date(int(body.month[:4]), int(body.month[5:]), 1), body.month
    if not EARLIEST <= body.effective_from <= LATEST:
        raise ValidationFailed.at("$.effective_from", f"must lie between {EARLIEST} and {LATEST}")
    return body.effective_from, None


def _is_month(text: str) -> bool:
    return (
        len(text) == 7
        and text[4] == "-"
        and text[:4].isdigit()
        and text[5:].isdigit()
        and text.isascii()
        and 2000 <= int(text[:4]) <= 2099
        and 1 <= int(text[5:]) <= 12
    )


def checked_content(body: Publish) -> Content:
    """The publication's figures in normal form, or 422 naming every bad field or row."""
    problems = Problems()
    problems.check("$.source", _text, body.source)
    if body.reason is not None:
        problems.check("$.reason", _text, body.reason)
    if isinstance(body, PublishExchangeRates):
        content = Content(rates=_rates(body.rates, problems))
    elif isinstance(body, PublishTariff):
        content = Content(rows=_rows(body.rows, problems))
    elif isinstance(body, PublishPositiveList):
        content = Content(hs_codes=_hs_codes(body.hs_codes, problems))
    else:
        if body.rules.seed:
            problems.add(
                "$.rules.seed",
                "the selection seed is the ledger's secret and is never published",
            )
        content = Content(rules=body.rules.canonical())
    problems.raise_if_any()
    return content


def _text(loc: str, value: str) -> str:
    return values.text(loc, value, max_length=TEXT_LIMIT)


def _rates(rates: dict[str, Decimal], problems: Problems) -> dict[str, Decimal]:
    if not rates:
        problems.add("$.rates", "must name at least one currency")
    normal = {}
    for code, rate in rates.items():
        loc = f"$.rates.{code}"
        if code == "CNY":
            problems.add(loc, "CNY is 1 by definition and is not published")
            continue
        if problems.check(loc, values.currency, code) is None:
            continue
        checked = problems.check(loc, _figure, rate, 8, True)
        if checked is not None:
            normal[code] = checked
    return dict(sorted(normal.items()))


def _figure(loc: str, value: Decimal, places: int, positive: bool) -> Decimal:
    checked = values.decimal_value(loc, value, places=places, positive=positive)
    return Decimal(format(checked.normalize(), "f")) if checked else Decimal(0)


def _fraction(loc: str, value: Decimal) -> Decimal:
    """A rate below 1 (VAT, consumption tax): the composite price divides by (1 - rate)."""
    checked = _figure(loc, value, 6, False)
    if checked >= 1:
        raise ValidationFailed.at(loc, "must be a fraction below 1 (0.13 is 13%)")
    return checked


def _prefix(loc: str, code: str) -> str:
    """6 to 10 digits within an HS 2022 subheading (domain/hs_nomenclature.py)."""
    if not (6 <= len(code) <= 10 and code.isascii() and code.isdigit()):
        raise ValidationFailed.at(loc, "must be an HS prefix of 6 to 10 digits")
    if not hs_nomenclature.subheading_exists(code):
        raise ValidationFailed.at(
            loc,
            f"HS {code}: subheading {hs_nomenclature.dotted(code)} is not in the HS 2022"
            " nomenclature",
        )
    return code


def _rows(rows: list[TariffRow], problems: Problems) -> list[TariffRow]:
    if not rows:
        problems.add("$.rows", "must list at least one row")
    if len(rows) > MAX_ROWS:
        problems.add("$.rows", f"at most {MAX_ROWS} rows")
        return []
    seen: dict[str, int] = {}
    normal = []
    for n, row in enumerate(rows):
        at = f"$.rows[{n}]"
        prefix = problems.check(f"{at}.hs_prefix", _prefix, row.hs_prefix)
        if prefix is not None and prefix in seen:
            problems.add(f"{at}.hs_prefix", f"{prefix} is listed already at rows[{seen[prefix]}]")
        elif prefix is not None:
            seen[prefix] = n
        tariff = problems.check(f"{at}.tariff_rate", _figure, row.tariff_rate, 6, False)
        vat = problems.check(f"{at}.vat_rate", _fraction, row.vat_rate)
        excise = problems.check(f"{at}.consumption_tax_rate", _fraction, row.consumption_tax_rate)
        if row.source is not None:
            problems.check(f"{at}.source", _text, row.source)
        if prefix is None or tariff is None or vat is None or excise is None:
            continue
        normal.append(
            TariffRow(
                hs_prefix=prefix,
                tariff_rate=tariff,
                vat_rate=vat,
                consumption_tax_rate=excise,
                source=row.source,
            )
        )
    return sorted(normal, key=lambda r: r.hs_prefix)


def _hs_codes(codes: list[str], problems: Problems) -> list[str]:
    if not codes:
        problems.add("$.hs_codes", "must list at least one HS prefix")
    if len(codes) > MAX_ROWS:
        problems.add("$.hs_codes", f"at most {MAX_ROWS} prefixes")
        return []
    seen: dict[str, int] = {}
    for n, code in enumerate(codes):
        loc = f"$.hs_codes[{n}]"
        if problems.check(loc, _prefix, code) is None:
            continue
        if code in seen:
            problems.add(loc, f"{code} is listed already at hs_codes[{seen[code]}]")
        seen[code] = n
    return sorted(seen)


def digest_of(kind: str, effective_from: date, content: Content) -> str:
    """SHA-256 (64 hex digits) of the kind, the effective date and the figures as canonical
    msgspec JSON with sorted keys: the source and reason are not figures, so they are not part
    of it, and neither is the order rows were listed in."""
    part = {"kind": kind, "effective_from": effective_from, "content": content}
    return hashlib.sha256(msgspec.json.encode(part, order="sorted")).hexdigest()


# -- the decision -------------------------------------------------------------------------


def publish(
    pending: Pending[ReferenceRegister],
    kind: Kind,
    body: Publish,
    actor: Actor,
    now: datetime,
) -> Published:
    """Record a publication: a new version for its effective date. A second one for the same
    date is a correction and needs a reason; the same figures again are refused (409)."""
    effective_from, month = effective_date(body)
    content = checked_content(body)
    digest = digest_of(kind, effective_from, content)
    register = pending.state
    before = register.latest(effective_from) if register is not None else None
    if before is not None:
        when = month or effective_from
        if before.digest == digest:
            raise Conflict(
                f"the {kind} of {when} version {before.version} has these figures already",
                rule="reference_unchanged",
            )
        if body.reason is None:
            raise ValidationFailed.at(
                "$.reason",
                f"the {kind} of {when} was published already (version {before.version}): a"
                " correction needs a reason",
            )
    version = before.version + 1 if before is not None else 1
    pending.record(
        ReferencePublished,
        actor=actor,
        occurred_at=now,
        kind=kind,
        effective_from=effective_from,
        month=month,
        version=version,
        digest=digest,
        content=content,
        source=body.source,
        reason=body.reason,
    )
    return Published(
        kind=kind,
        version=version,
        effective_from=effective_from,
        month=month,
        digest=digest,
        corrects=before.version if before is not None else None,
    )
