"""Cross-border e-commerce retail lists: one figure for the limits, the quota and the tax, and
the goods that may be sold that way at all.

The figure is the order's amount. Caiguanshui [2016] No. 18 makes the dutiable price of a
retail import "the actual transaction price, including the retail price of the goods, freight
and insurance", and counts that same price against the per-transaction and yearly limits
(raised to CNY 5,000 and CNY 26,000 by Caiguanshui [2018] No. 49). A list whose order says
less than its goods would carry a small figure past the limits and the quota while the tax
took another: so the order amount must equal the lines' value plus freight plus insurance, to
the fen, and the list is declared in CNY, the currency the limits are written in.

The positive list ("List of Goods for Cross-border E-commerce Retail Import", MOF et al.; the
`positive-list` reference data) names the goods that may be imported this way: a line whose HS
code is under none of its prefixes is refused before any tariff lookup, as a good that may
not be sold retail, not as one without a rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from domain import values
from domain.declaration import DeclaredLine, SubmitDeclaration
from domain.errors import FieldError, ValidationFailed
from domain.reference_data import ReferenceRegister
from domain.values import Problems

CENT = Decimal("0.01")


def order_total(lines: Sequence[DeclaredLine], freight: Decimal, insurance: Decimal) -> Decimal:
    """What the order must say: the lines' quantity x unit price, plus freight and insurance,
    rounded to the fen (half-up)."""
    goods = sum((line.quantity * line.unit_price for line in lines), Decimal(0))
    return (goods + freight + insurance).quantize(CENT, ROUND_HALF_UP)


def _checked(
    fn: Callable[[str, Decimal], Decimal], loc: str, value: Decimal | None
) -> Decimal | None:
    """The value as `fn` accepts it (0 when absent), or None when refused: the field checks
    report that."""
    if value is None:
        return Decimal("0.00")
    return Problems().check(loc, fn, value)


def check_order(cmd: SubmitDeclaration, lines: list[DeclaredLine], p: Problems) -> None:
    """A retail list is in CNY (422 at `$.currency`, rule `retail_currency_not_cny`) and its
    order amount is its lines plus freight plus insurance (422 at `$.ecommerce.order.amount`,
    rule `order_amount_mismatch`). Figures already refused elsewhere are not compared."""
    assert cmd.ecommerce is not None
    if cmd.currency != "CNY":
        if not any(e.loc == "$.currency" for e in p.errors):
            p.add(
                "$.currency",
                f"a retail list is declared in CNY, not {cmd.currency}: its order amount is what"
                " the CNY 5,000 and CNY 26,000 limits count (Caiguanshui [2018] No. 49)",
                rule="retail_currency_not_cny",
            )
        return
    order = _checked(values.positive_amount, "$.ecommerce.order.amount", cmd.ecommerce.order.amount)
    freight = _checked(values.amount, "$.freight", cmd.freight)
    insurance = _checked(values.amount, "$.insurance", cmd.insurance)
    if order is None or freight is None or insurance is None or len(lines) != len(cmd.lines):
        return
    total = order_total(lines, freight, insurance)
    if order != total:
        goods = total - freight - insurance
        p.add(
            "$.ecommerce.order.amount",
            f"the order amount {order} must equal the goods {goods} + freight {freight} +"
            f" insurance {insurance} = {total}: the transaction price is the limits', the"
            " quota's and the tax's one figure (Caiguanshui [2016] No. 18)",
            rule="order_amount_mismatch",
        )


def on_positive_list(prefixes: Sequence[str], hs_code: str) -> bool:
    """Whether the 10-digit code falls under a listed prefix (6 to 10 digits): the longest
    prefix of the code that the list names, if any, admits it."""
    listed = set(prefixes)
    return any(hs_code[:length] in listed for length in range(len(hs_code), 5, -1))


def check_positive_list(
    register: ReferenceRegister | None, day: date, lines: Sequence[DeclaredLine]
) -> None:
    """Every line of a retail list under the positive list in force on `day`, or 422 at each
    line's `hs_code` (rule `not_on_positive_list`).

    With no list in force (none ever published, or only lists that take effect later) nothing
    is refused: a ledger publishes the built-in extract at its first start, so this is a store
    that never did (a unit test's), not a ledger in service.
    """
    publication = register.in_force(day) if register is not None else None
    if publication is None or publication.content.hs_codes is None:
        return
    prefixes = publication.content.hs_codes
    errors = [
        FieldError(
            f"$.lines[{n}].hs_code",
            f"HS {line.hs_code} is not on the cross-border e-commerce retail import positive"
            f" list in force on {day} (version {publication.version} of"
            f" {publication.effective_from}): it may not be sold as a retail import",
            "not_on_positive_list",
        )
        for n, line in enumerate(lines)
        # Goods of Chinese origin leaving the zone are no import: only bonded lines are.
        if line.goods_status != "domestic" and not on_positive_list(prefixes, line.hs_code)
    ]
    if errors:
        raise ValidationFailed(errors)
