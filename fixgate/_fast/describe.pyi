"""Typing stub for ``fixgate._fast.describe``."""

from typing import Final

import numpy as np
import numpy.typing as npt

from fixgate._fast.risk import RiskBook

MAX_SYMBOL_BYTES: Final[int]
MAX_SENTENCE_BYTES: Final[int]

class RejectDescriber:
    # -- WIRING -------------------------------------------------------------------------------------
    @property
    def book(self) -> RiskBook: ...
    @property
    def symbol_count(self) -> int: ...
    def __init__(self, book: RiskBook) -> None: ...

    # -- SENTENCES ----------------------------------------------------------------------------------
    def describe(self, code: int, *, instrument_id: int, side: int, ord_type: int, qty: float,
                 price: float) -> str: ...
    def describe_into(self, out: bytearray | memoryview | npt.NDArray[np.uint8], code: int, *,
                      instrument_id: int, side: int, ord_type: int, qty: float, price: float) -> int: ...
