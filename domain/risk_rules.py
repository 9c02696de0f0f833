"""Default risk rules: class policies, a few watched goods and origins, the unit-value test.

Illustrative defaults with their reasoning, not a customs office's real profile (real risk
profiles are confidential). Every figure is data: a fresh ledger publishes these (or
LEDGER_RISK_RULES_FILE's JSON `RiskRules`, without a seed: docs/decisions/0021) as version 1 of
the `risk-rules` reference table, officers publish later versions (docs/reference-data.md), and
each outcome records the version of the rules it used.
"""

from __future__ import annotations

from decimal import Decimal

from domain.risk import ClassPolicy, RiskRules, UnitValueRule, WatchedGoods, WatchedOrigin

# The brief cites 2019 inspection rates of 0.57% for advanced certified (AEO) enterprises and
# 84.76% for dishonest ones; it gives none for regular enterprises. The defaults aim at the same
# spread without claiming those figures:
# - AEO: green, 0.5% drawn for physical inspection (just under the 0.57% observed, which also
#   counts inspections that watched goods and origins trigger).
# - regular: green, 5% drawn - an order of magnitude above AEO, a placeholder to verify against
#   the office's published rates.
# - dishonest: always at least document review (yellow; the engine enforces that floor whatever
#   this table says), and half drawn for physical inspection; with the watched rules on top the
#   share inspected rises towards the 84.76% the brief reports.
CLASSES = {
    "advanced_certified": ClassPolicy(
        base_channel="green", selection_rate=Decimal("0.005"), selected_channel="red"
    ),
    "regular": ClassPolicy(
        base_channel="green", selection_rate=Decimal("0.05"), selected_channel="red"
    ),
    "dishonest": ClassPolicy(
        base_channel="yellow", selection_rate=Decimal("0.5"), selected_channel="red"
    ),
}

# A chapter, heading or subheading (HS 2022); the longest prefix of a line's code applies.
# Not watched, on purpose: 0901 coffee, 8471 computers and the other everyday e-commerce goods,
# which random selection and the unit-value test cover.
WATCHED_GOODS = [
    WatchedGoods(
        hs_prefix="93",
        channel="red",
        reason="arms and ammunition: import needs a public-security licence",
    ),
    WatchedGoods(
        hs_prefix="2402",
        channel="yellow",
        reason="cigars and cigarettes: state tobacco monopoly licence and consumption tax",
    ),
    WatchedGoods(
        hs_prefix="3004",
        channel="yellow",
        reason="medicaments: drug import registration and port inspection documents",
    ),
    WatchedGoods(
        hs_prefix="293941",
        channel="red",
        reason="ephedrine and its salts: controlled precursor chemical",
    ),
]

# UN Security Council resolutions 2371, 2375 and 2397 (2017) ban most exports of the DPRK
# (coal, iron, seafood, textiles, food, machinery, ...) [verify the current list]: every line
# of that origin goes to physical inspection.
WATCHED_ORIGINS = [
    WatchedOrigin(
        country="KP",
        channel="red",
        reason="UN Security Council sanctions on goods of DPRK origin",
    ),
]

# The value checks (domain/value_checks.py) compare a price with the item's own released
# prices in the same currency: their median, and their median absolute deviation (MAD) as the
# spread, so one typo moves neither (issue #16).
# - Below half the median suggests under-valuation (less duty); above three times suggests
#   mis-description or money moved through the price: document review - but only when the
#   price is also more than 3 MADs from the median (about two standard deviations of normally
#   spread prices), so an item whose prices genuinely vary is not reviewed for varying.
# - Three released declarations in the currency make a median worth comparing against.
# - A hundred times the median or a hundredth of it is no valuation question but a wrong
#   figure (a misplaced decimal point is a factor of 10 to 10,000): absurd.
# Bounds that need no history, in CNY at the customs rate (the month's, else the latest one
# published for the currency): illustrative orders of magnitude, not published figures.
# - CNY 10 billion for one unit, or for one line: above the dearest goods bonded zones clear (a
#   wide-body aircraft under bonded leasing is about CNY 2 billion [verify]).
# - A billion of the item's legal unit on one line: a very large crude carrier carries about
#   300,000 t, i.e. 3 x 10^8 kg.
# - An item not yet known (fewer than three releases) worth over CNY 10 million in one
#   declaration goes to document review: new goods of that value are worth a look, while the
#   usual first container of an item (e.g. 1,000 laptops, about CNY 3.5 million) is not.
# Absurd figures go at least to document review whatever `channel` says, and their lines never
# enter the history.
# The figures from `spread_factor` on (3, 100, CNY 10 billion, 10^9, CNY 10 billion, CNY 10
# million) are UnitValueRule's defaults, so they are not repeated here: a rule set published
# before issue #16 decodes to these same checks, and the built-in set keeps its JSON and so its
# digest (msgspec omits a default only when it is the default object itself).
UNIT_VALUE = UnitValueRule(
    min_history=3, low_ratio=Decimal("0.5"), high_ratio=Decimal("3"), channel="yellow"
)

# No seed here: the random selection's seed is a secret of each ledger, made on its first start
# and kept outside the log (ledger/selection_seed.py); a rules file carries none either.
DEFAULT_RULES = RiskRules(
    classes=CLASSES,
    watched_goods=WATCHED_GOODS,
    watched_origins=WATCHED_ORIGINS,
    unit_value=UNIT_VALUE,
)
