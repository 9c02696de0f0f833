"""Reference data as data: zones, flows, trade modes, transport modes, units, credit classes.

Everything here changes by decree or by deployment, so none of it is code: the API serves it,
a zones file can replace the zones, and later issues load the rest from files as well.
"""

from __future__ import annotations

from datetime import date

import msgspec

PERMITS = (
    "storage",
    "distribution",
    "processing",
    "simple_processing",
    "bonded_ecommerce",
    "display",
    "repair",
    "testing",
)


class DatedPermit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A permit a zone holds from `valid_from` (inclusive) until `valid_to` (exclusive)."""

    permit: str
    valid_from: date
    valid_to: date | None = None

    def in_force(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on < self.valid_to)


class Zone(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A special customs supervision zone and the customs office that supervises it."""

    code: str
    name: str
    kind: str
    customs_office: str
    permits: list[DatedPermit]
    # The official Chinese name (what officers and clerks read; issue #20).
    name_zh: str | None = None

    def permits_on(self, on: date) -> list[str]:
        return [p.permit for p in self.permits if p.in_force(on)]


_SINCE = date(2018, 1, 1)
_BONDED_ZONE = (
    "storage",
    "distribution",
    "processing",
    "simple_processing",
    "bonded_ecommerce",
    "display",
    "repair",
    "testing",
)


def _permits(*names: str) -> list[DatedPermit]:
    return [DatedPermit(permit=n, valid_from=_SINCE) for n in names]


# Office codes from a 2017 snapshot, marked [verify] in the domain brief: 9007, 9008, 9013,
# 9005; the aviation base zone postdates it and uses 9000 (Xi'an district office) until
# confirmed. Deployments correct them with LEDGER_ZONES_FILE, never in code. The Chinese names
# are the zones' names as the State Council's approvals and the zones' administrations use them
# [verify: not checked against the approval documents in this repository; a zones file
# corrects them].
DEFAULT_ZONES: tuple[Zone, ...] = (
    Zone(
        code="XCBZ",
        name="Xi'an Comprehensive Bonded Zone",
        name_zh="西安综合保税区",
        kind="comprehensive_bonded_zone",
        customs_office="9007",
        permits=_permits(*_BONDED_ZONE),
    ),
    Zone(
        code="XHTZ",
        name="Xi'an High-tech Comprehensive Bonded Zone",
        name_zh="西安高新综合保税区",
        kind="comprehensive_bonded_zone",
        customs_office="9008",
        permits=_permits(*_BONDED_ZONE),
    ),
    Zone(
        code="XABZ",
        name="Xi'an Aviation Base Comprehensive Bonded Zone",
        name_zh="西安航空基地综合保税区",
        kind="comprehensive_bonded_zone",
        customs_office="9000",
        permits=_permits(*_BONDED_ZONE),
    ),
    Zone(
        code="XXLC",
        name="Shaanxi Xixian Bonded Logistics Center (type B)",
        name_zh="陕西西咸保税物流中心（B型）",  # noqa: RUF001 - the name is written with full-width parentheses
        kind="bonded_logistics_center_b",
        customs_office="9013",
        permits=_permits("storage", "distribution", "bonded_ecommerce", "simple_processing"),
    ),
    Zone(
        code="XEPZ",
        name="Xi'an Export Processing Zone",
        name_zh="西安出口加工区",
        kind="export_processing_zone",
        customs_office="9005",
        permits=_permits("processing", "simple_processing", "storage"),
    ),
)

FLOWS = (
    "first_line_in",
    "first_line_out",
    "second_line_in",
    "second_line_out",
    "transfer",
    "direct_in",
)
# Goods that come in (their lines name an origin country); `direct_in` is a 9610 parcel from
# abroad, cleared at a supervision site and delivered to the buyer without entering a book.
INBOUND_FLOWS = ("first_line_in", "second_line_in", "direct_in")
OUTBOUND_FLOWS = ("first_line_out", "second_line_out", "transfer")
# The flows whose declaration moves no account book (no `account_book`, no stock, no lot).
BOOKLESS_FLOWS = ("direct_in",)
# Direction digit of the declaration number: 1 = import into China's customs territory/market.
IMPORT_FLOWS = ("first_line_in", "second_line_out", "direct_in")

TRADE_MODES: dict[str, str] = {
    "0110": "general trade",
    "5034": "zone logistics goods (bonded storage)",
    "9610": "cross-border e-commerce B2C direct (per-parcel list)",
    "1210": "bonded cross-border e-commerce",
    "1239": "bonded e-commerce A",
    "9710": "cross-border e-commerce B2B direct export",
    "9810": "cross-border e-commerce export to overseas warehouse",
}
RETAIL_TRADE_MODES = ("9610", "1210", "1239")
# The one flow a retail list of each mode takes. 9610 is direct purchase by post or express:
# each parcel is declared and taxed on arrival against its transport and never sits in a
# zone's book (GACC Announcement 2014 No. 12 created the mode [verify]; 2018 No. 194 governs
# the supervision of retail imports [verify]). 1210 and 1239 sell a zone's bonded stock into
# China, a second-line exit (1210: 2014 No. 57 [verify]; 1239: 2016 No. 75 [verify]).
RETAIL_FLOW: dict[str, str] = {
    "9610": "direct_in",
    "1210": "second_line_out",
    "1239": "second_line_out",
}
# Modes bound to flows: 9610 is declared only as `direct_in`, and `direct_in` only as 9610
# (anything else is 422 `mode_not_allowed_for_flow` at `$.trade_mode`).
MODE_FLOWS: dict[str, tuple[str, ...]] = {"9610": ("direct_in",)}
FLOW_MODES: dict[str, tuple[str, ...]] = {"direct_in": ("9610",)}


def mode_allowed(flow: str, trade_mode: str) -> bool:
    """Whether a declaration of `flow` may use `trade_mode` (MODE_FLOWS, FLOW_MODES)."""
    flows = MODE_FLOWS.get(trade_mode)
    modes = FLOW_MODES.get(flow)
    return (flows is None or flow in flows) and (modes is None or trade_mode in modes)


TRANSPORT_MODES: dict[str, str] = {
    "rail": "rail (China-Europe freight train)",
    "air": "air cargo",
    "road": "road",
    "sea": "sea",
    "express": "international express",
    "post": "post",
    "other": "other",
}

# UN/ECE Recommendation 20 codes for the legal units customs use most.
UNITS: dict[str, str] = {
    "C62": "one (piece)",
    "H87": "piece",
    "PR": "pair",
    "SET": "set",
    "DZN": "dozen",
    "KGM": "kilogram",
    "GRM": "gram",
    "TNE": "tonne",
    "LTR": "litre",
    "MLT": "millilitre",
    "MTQ": "cubic metre",
    "MTK": "square metre",
    "MTR": "metre",
    "KWH": "kilowatt hour",
    "CT": "carton",
    "BX": "box",
}
WHOLE_UNITS = ("C62", "H87", "PR", "SET", "DZN", "CT", "BX")

CREDIT_CLASSES = ("advanced_certified", "regular", "dishonest")
