"""Query parameters read by one grammar.

FastAPI hands query text to pydantic, whose lax integer parsing also takes `0.0`, `+1`, ` 1` and
`1_0`: values the OpenAPI document (`type: integer`) says are not integers. An integer parameter
here is ASCII digits with an optional leading `-` (so the range check can still name the bound),
at most 19 of them; anything else is 422 naming the parameter.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from domain.errors import RefusedValue

INTEGER_TEXT = re.compile(r"-?[0-9]{1,19}")


def _ascii_integer(value: Any) -> Any:
    if isinstance(value, str) and not INTEGER_TEXT.fullmatch(value):
        # pydantic answers "Value error, <message>" (api/i18n.py EXTERNAL_MESSAGES).
        raise RefusedValue("must be an integer written in ASCII digits")
    return value


Integer = Annotated[int, BeforeValidator(_ascii_integer)]
