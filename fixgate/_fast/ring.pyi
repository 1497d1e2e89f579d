"""Typing stub for ``fixgate._fast.ring``."""

from typing import Final

import numpy
import numpy.typing

EVENT_FIELDS: Final[tuple[str, ...]]
EVENT_DTYPE: Final[numpy.dtype[numpy.void]]
MAX_CAPACITY: Final[int]

EventTuple = tuple[int, int, int, int, int, int, int, int, int, int, float, int, int]

class SpscRing:
    # -- LAYOUT -------------------------------------------------------------------------------------
    @property
    def capacity(self) -> int: ...
    @property
    def mask(self) -> int: ...
    def __init__(self, capacity: int) -> None: ...

    # -- PRODUCER -----------------------------------------------------------------------------------
    def try_push(
        self,
        kind: int,
        order_id: int,
        *,
        instrument_id: int = 0,
        session_id: int = 0,
        side: int = 0,
        status: int = 0,
        reject_code: int = 0,
        qty_lots: int = 0,
        cum_lots: int = 0,
        leaves_lots: int = 0,
        price: float = 0.0,
        recv_ns: int = 0,
        sent_ns: int = 0,
    ) -> bool: ...

    # -- CONSUMER -----------------------------------------------------------------------------------
    def try_pop(self) -> EventTuple | None: ...
    def drain(self, out: numpy.typing.NDArray[numpy.void], limit: int | None = None) -> int: ...

    # -- SNAPSHOTS (any thread) ---------------------------------------------------------------------
    def size(self) -> int: ...
    @property
    def head(self) -> int: ...
    @property
    def tail(self) -> int: ...
    @property
    def full_count(self) -> int: ...

# -- STRESS AND THROUGHPUT --------------------------------------------------------------------------

def produce_sequence(ring: SpscRing, first: int, count: int) -> int: ...
def consume_sequence(ring: SpscRing, first: int, count: int, batch: int = 256) -> int: ...
