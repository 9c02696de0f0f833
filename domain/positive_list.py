"""The built-in cross-border e-commerce retail import positive list (an illustrative extract).

The real list is the "List of Goods for Cross-border E-commerce Retail Import" (跨境电子商务零售进口
商品清单), published by the Ministry of Finance with the NDRC, MOFCOM, GACC and others; its 2022
edition (MOF et al. Announcement 2022 No. 7 [verify], in force 2022-03-01 [verify]) lists 1,476
eight-digit tariff lines. This ledger ships only the HS prefixes of the goods its built-in tariff
and examples trade in, as version 1 of the `positive-list` table, so a fresh ledger has one;
customs publish the real list (`customs-ledger reference load positive-list FILE.csv`).
Every entry is [verify]: the extract was not checked line by line against the announcement.
"""

from __future__ import annotations

from datetime import date

from domain.reference_data import PublishPositiveList

EFFECTIVE_FROM = date(2022, 3, 1)  # [verify] the 2022 edition's date of effect
SOURCE = (
    "illustrative extract of the cross-border e-commerce retail import positive list, 2022"
    " edition (MOF et al. Announcement 2022 No. 7 [verify]); not the whole list"
)
HS_PREFIXES = (
    "040221",  # milk powder, not sweetened
    "090121",  # roasted coffee
    "190110",  # preparations for infant use (formula)
    "210690",  # food preparations n.e.s. (food supplements)
    "220421",  # wine in containers of 2 l or less
    "330300",  # perfumes and toilet waters
    "330410",  # lip make-up
    "330420",  # eye make-up
    "330491",  # powders
    "330499",  # beauty and skin-care preparations
    "330510",  # shampoos
    "420221",  # handbags with leather outer surface
    "490199",  # printed books
    "640351",  # footwear with leather uppers
    "640359",
    "640391",
    "640399",
    "847130",  # portable computers
    "851713",  # smartphones
    "851830",  # headphones and earphones
    "950300",  # toys
    "961900",  # sanitary towels, napkins and diapers
)


def builtin_positive_list() -> list[PublishPositiveList]:
    return [
        PublishPositiveList(
            effective_from=EFFECTIVE_FROM, hs_codes=list(HS_PREFIXES), source=SOURCE
        )
    ]
