"""The risk engine: a declaration's channel (green, yellow, red) and its reasons, from data."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

import msgspec
import pycountry

from domain.errors import RefusedValue, ValidationFailed
from domain.value_checks import CHANNELS as CHANNELS
from domain.value_checks import LineRisk as LineRisk
from domain.value_checks import UnitValueRule as UnitValueRule
from domain.value_checks import value_findings

SEVERITY = {channel: rank for rank, channel in enumerate(CHANNELS)}
ADVANCED_CERTIFIED = "advanced_certified"
DISHONEST = "dishonest"
# The law, not a setting: a rules file can make dishonest enterprises stricter, never green.
DISHONEST_FLOOR = "yellow"
# A chapter (2 digits), a heading (4) or a subheading and beyond (6 to 10).
HS_PREFIX = re.compile(r"[0-9]{2}|[0-9]{4}|[0-9]{6,10}")
DRAW_PLACES = 6


def _check_channel(name: str, channel: str) -> None:
    if channel not in SEVERITY:
        raise RefusedValue(f"{name} {channel!r} is not one of {', '.join(CHANNELS)}")


def _check_reason(reason: str) -> None:
    if not reason.strip() or any(ord(ch) < 32 for ch in reason):
        raise RefusedValue("a reason is a non-empty line of text")


def _check_prefix(prefix: str) -> None:
    if not HS_PREFIX.fullmatch(prefix):
        raise RefusedValue(f"hs_prefix {prefix!r} must be 2, 4 or 6 to 10 digits")


def _plain(value: Decimal) -> str:
    """Plain notation for reasons: 0.005, never 5E-3."""
    return format(value, "f")


def most_severe(*channels: str) -> str:
    return max(channels, key=SEVERITY.__getitem__, default="green")


class ClassPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How one credit class is treated: its channel without findings and its random selection."""

    base_channel: str
    selection_rate: Decimal
    selected_channel: str

    def __post_init__(self) -> None:
        _check_channel("base_channel", self.base_channel)
        _check_channel("selected_channel", self.selected_channel)
        rate = self.selection_rate
        if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
            raise RefusedValue(f"selection_rate must be a decimal in [0, 1], not {rate}")


class WatchedGoods(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Goods under a chapter, heading or subheading that deserve at least `channel`."""

    hs_prefix: str
    channel: str
    reason: str

    def __post_init__(self) -> None:
        _check_prefix(self.hs_prefix)
        _check_channel("channel", self.channel)
        _check_reason(self.reason)


class WatchedOrigin(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Goods from a country (optionally only some goods from it) that deserve at least `channel`."""

    country: str
    channel: str
    reason: str
    hs_prefix: str | None = None

    def __post_init__(self) -> None:
        if len(self.country) != 2 or pycountry.countries.get(alpha_2=self.country) is None:
            raise RefusedValue(f"{self.country!r} is not an ISO 3166 alpha-2 country code")
        if self.hs_prefix is not None:
            _check_prefix(self.hs_prefix)
        _check_channel("channel", self.channel)
        _check_reason(self.reason)

    @property
    def key(self) -> tuple[str, str]:
        return (self.country, self.hs_prefix or "")


class RiskRules(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """Everything a risk assessment depends on besides the declaration: all of it is data.

    `seed` is the secret of the random selection: never in a rules file (empty there); the
    ledger gives the rules their seed (ledger/selection_seed.py) just before an assessment.
    """

    classes: dict[str, ClassPolicy]
    watched_goods: list[WatchedGoods]
    watched_origins: list[WatchedOrigin]
    unit_value: UnitValueRule
    seed: str = ""

    def __post_init__(self) -> None:
        if self.seed and not self.seed.strip():
            raise RefusedValue("seed must not be blank (empty: the ledger gives one)")
        if not self.classes:
            raise RefusedValue("classes must name at least one credit class")
        aeo = self.classes.get(ADVANCED_CERTIFIED)
        # AEO enterprises get red only by a rule or by the draw, so never from their class.
        if aeo is not None and aeo.base_channel == "red":
            raise RefusedValue(f"{ADVANCED_CERTIFIED} must not have a red base_channel")
        prefixes = [w.hs_prefix for w in self.watched_goods]
        if len(set(prefixes)) != len(prefixes):
            raise RefusedValue("two watched_goods entries share an hs_prefix")
        origins = [w.key for w in self.watched_origins]
        if len(set(origins)) != len(origins):
            raise RefusedValue("two watched_origins entries share a country and hs_prefix")

    def canonical(self) -> RiskRules:
        """The same rules with their lists sorted: listing order decides nothing, so it is no
        part of the version."""
        return msgspec.structs.replace(
            self,
            watched_goods=sorted(self.watched_goods, key=lambda w: w.hs_prefix),
            watched_origins=sorted(self.watched_origins, key=lambda w: w.key),
        )

    def version(self) -> str:
        """SHA-256 (all 64 hex digits) of the canonical rules as msgspec JSON with sorted keys.

        Any change of a figure, channel, reason text or the seed changes it; the order in which
        a file lists its watched entries does not. Decimals hash as written ("0.05" and "0.050"
        differ), since that is how an auditor reads the file.
        """
        kept = _VERSIONS.get(id(self))
        if kept is not None and kept[0] is self:
            return kept[1]
        encoded = msgspec.json.encode(self.canonical(), order="sorted")
        digest = hashlib.sha256(encoded).hexdigest()
        if len(_VERSIONS) >= 64:
            _VERSIONS.clear()
        _VERSIONS[id(self)] = (self, digest)  # the rules are frozen: one digest per object
        return digest


# The version of each RiskRules object asked (every submission asks its server's rules). The
# object is kept with its digest, so a later object at the same id() is never mistaken for it.
_VERSIONS: dict[int, tuple[RiskRules, str]] = {}


class RiskOutcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The decision as recorded: replay reads it, it never recomputes it."""

    channel: str
    reasons: list[str]
    draw: Decimal
    selected: bool
    rules_version: str
    # Lines whose figures the value checks found absurd: they never enter the item's history.
    outlier_lines: list[int] = []


def draw_for(seed: str, declaration_id: UUID) -> Decimal:
    """The declaration's random-selection draw in [0, 1), six decimals, reproducible from data.

    To recompute it: take the SHA-256 digest of the UTF-8 text `<seed>:<declaration id>` (the id
    in its lowercase hyphenated form), read its first 8 bytes as a big-endian unsigned integer n,
    and cut n / 2**64 down to six decimals, i.e. floor(n * 10**6 / 2**64) / 10**6. In Python:
    `int.from_bytes(hashlib.sha256(f"{seed}:{id}".encode()).digest()[:8], "big")`. Integer
    arithmetic keeps it exact; nobody's clock or random generator takes part. The seed must
    stay secret from declarants: they choose the key the declaration id derives from.
    """
    digest = hashlib.sha256(f"{seed}:{declaration_id}".encode()).digest()
    n = int.from_bytes(digest[:8], "big")
    millionths = (n * 10**DRAW_PLACES) >> 64
    return Decimal(f"0.{millionths:0{DRAW_PLACES}d}")


def _most_specific_goods(rules: RiskRules, hs_code: str) -> WatchedGoods | None:
    """The longest watched prefix of the code: a heading's entry refines its chapter's."""
    matches = [w for w in rules.watched_goods if hs_code.startswith(w.hs_prefix)]
    return max(matches, key=lambda w: len(w.hs_prefix), default=None)


def _most_specific_origin(rules: RiskRules, line: LineRisk) -> WatchedOrigin | None:
    """The country's entry with the longest matching prefix; an entry without one matches all."""
    matches = [
        w
        for w in rules.watched_origins
        if w.country == line.origin_country
        and (w.hs_prefix is None or line.hs_code.startswith(w.hs_prefix))
    ]
    return max(matches, key=lambda w: len(w.hs_prefix or ""), default=None)


def _class_reason(credit_class: str, policy: ClassPolicy) -> tuple[str, str | None]:
    """The class's own channel, and a reason when the class alone keeps the declaration off
    green; the dishonest floor holds whatever the rules file says."""
    channel = policy.base_channel
    if credit_class == DISHONEST:
        channel = most_severe(channel, DISHONEST_FLOOR)
    reason = f"credit_class:{credit_class}" if channel != "green" else None
    return channel, reason


def _add(reasons: list[str], reason: str) -> None:
    if reason not in reasons:  # two lines tripping one rule say so once
        reasons.append(reason)


def assess_risk(
    rules: RiskRules,
    *,
    credit_class: str,
    declaration_id: UUID,
    lines: Sequence[LineRisk],
) -> RiskOutcome:
    """The most severe channel that the class, the watched goods and origins, the value checks
    (domain/value_checks.py) and the random selection give, with every finding's reason.

    Reasons come class first, then goods, origins, values and the draw; within each group in
    line-number order (the values' per-item first-declaration findings last), each once, so an
    assessment replayed from the same data compares equal.
    """
    policy = rules.classes.get(credit_class)
    if policy is None:
        raise ValidationFailed.at("$.declarant", "unknown credit class")
    channel, class_reason = _class_reason(credit_class, policy)
    class_reasons = [class_reason] if class_reason else []
    goods: list[str] = []
    origins: list[str] = []
    for line in sorted(lines, key=lambda item: item.line_no):
        watched = _most_specific_goods(rules, line.hs_code)
        if watched is not None:
            channel = most_severe(channel, watched.channel)
            _add(goods, f"watched_goods:{watched.hs_prefix}:{watched.reason}")
        origin = _most_specific_origin(rules, line)
        if origin is not None:
            channel = most_severe(channel, origin.channel)
            scope = f"{origin.country}:{origin.hs_prefix}" if origin.hs_prefix else origin.country
            _add(origins, f"watched_origin:{scope}:{origin.reason}")
    values = value_findings(rules.unit_value, lines)
    channel = most_severe(channel, values.channel)
    if not rules.seed:
        raise ValueError("the rules have no selection seed: the ledger gives them one")
    draw = draw_for(rules.seed, declaration_id)
    selected = draw < policy.selection_rate
    drawn: list[str] = []
    if selected:
        channel = most_severe(channel, policy.selected_channel)
        drawn.append(f"random_selection:{_plain(draw)}<{_plain(policy.selection_rate)}")
    return RiskOutcome(
        channel=channel,
        reasons=class_reasons + goods + origins + values.reasons + drawn,
        draw=draw,
        selected=selected,
        rules_version=rules.version(),
        outlier_lines=values.outlier_lines,
    )
