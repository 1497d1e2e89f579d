"""Firm budgets under any interleaving: several gateways' keepers (the real code, each with a real
risk book) share one firm limit through a key-value store with compare-and-set; each sees the
others' writes late or early, takes orders, cancels them and rebalances in any order. At every step
the allocations add up to no more than the limit, no book's budget is above its allocation, and what
the books accepted together stays within the limit."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import event, given, settings, strategies as st
from nats.js.errors import KeyWrongLastSequenceError

from fixgate._fast.instruments import Instruments
from fixgate._fast.quotes import QuoteBook
from fixgate._fast.risk import RiskBook
from fixgate._fast.throttle import Throttle
from fixgate.firm import budget as b

# A large limit split in big chunks (gross exposure, at 100.00 a lot), and a small one in chunks of
# one or two orders (daily orders), where whole units and rounding matter.
LIMITS = {"gross_exposure": 100_000, "daily_orders": 20}


@dataclass
class Entry:
    key: str
    value: bytes
    revision: int


class MemoryKV:
    """A key-value store with NATS KV's compare-and-set (create fails on a key that is there, update
    on a revision that is not the last)."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.revision = 0

    async def create(self, key: str, value: bytes) -> int:
        if key in self.entries:
            raise KeyWrongLastSequenceError()
        return self._put(key, value)

    async def get(self, key: str) -> Entry:
        return self.entries[key]

    async def update(self, key: str, value: bytes, last: int | None = None) -> int:
        if self.entries[key].revision != last:
            raise KeyWrongLastSequenceError()
        return self._put(key, value)

    def _put(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.entries[key] = Entry(key, value, self.revision)
        return self.revision


def book() -> RiskBook:
    instruments = Instruments(4)
    instruments.add("XYZ", tick_size=0.01, lot_size=1.0, reference_price=100.0)
    return RiskBook(instruments, QuoteBook(instruments), Throttle(4, 4))


gateways = st.integers(0, 2)
actions = st.one_of(
    st.tuples(st.just("order"), gateways, st.integers(1, 400)),       # lots at 100.00
    st.tuples(st.just("cancel"), gateways, st.integers(0, 50)),
    st.tuples(st.just("see"), gateways),                              # the watch delivers the last write
    st.tuples(st.just("see"), gateways),
    st.tuples(st.just("step"), gateways),
    st.tuples(st.just("step"), gateways),
    st.tuples(st.just("step"), gateways),
    st.tuples(st.just("settle"), gateways),                           # every keeper sees and steps, thrice
    st.tuples(st.just("restart"), gateways),                          # a new keeper from the budget file
)


@settings(max_examples=150, deadline=None)
@given(limit=st.sampled_from(sorted(LIMITS)),
       shares=st.lists(st.sampled_from([0.05, 0.1, 0.25, 0.5, 1.0]), min_size=3, max_size=3),
       script=st.lists(actions, min_size=10, max_size=300))
def test_budgets_when_gateways_interleave_anyhow_never_exceed_the_firm_limit(tmp_path_factory, limit, shares,
                                                                             script):
    folder = tmp_path_factory.mktemp("budgets")
    kv = MemoryKV()
    cap = LIMITS[limit]
    key = b.budget_key(limit)
    meter = b.Meter(limit, limit, -1, cap)
    books = [book() for _ in range(3)]

    def keeper_of(index: int) -> b.BudgetKeeper:
        # As a gateway starts: the book (its usage restored from the journal) gets the file's budget.
        budget_file = b.BudgetFile(folder / f"gw{index}.json")
        budgets = b.BookBudgets(books[index])
        saved = budget_file.load(trust_seconds=60.0)
        b.install(budgets, [meter], saved)
        return b.BudgetKeeper(f"gw{index}", [meter], budgets, budget_file, shares[index], saved=saved)

    keepers = [keeper_of(index) for index in range(3)]
    open_orders: list[list[int]] = [[], [], []]

    async def play() -> None:
        for keeper in keepers:
            await keeper._ensure(kv, meter)
        for action in script:
            kind, index = action[0], action[1]
            keeper, risk_book = keepers[index], books[index]
            if kind == "order":
                lots = float(action[2]) if limit == "gross_exposure" else 1.0
                if risk_book.check_new_order(0, 0, 1, 2, lots, 100.0, 1) == 0:
                    open_orders[index].append(risk_book.last_order_id)
            elif kind == "cancel" and open_orders[index]:
                risk_book.on_canceled(open_orders[index].pop(action[2] % len(open_orders[index])))
            elif kind == "see":
                entry = kv.entries[key]
                keeper._take_entry(meter.name, entry.value, entry.revision)
            elif kind == "step":
                await keeper._step(kv, meter)
            elif kind == "restart":
                keepers[index] = keeper_of(index)
                await keepers[index]._ensure(kv, meter)
            elif kind == "settle":
                for _ in range(3):
                    for other in keepers:
                        entry = kv.entries[key]
                        other._take_entry(meter.name, entry.value, entry.revision)
                        await other._step(kv, meter)
            ledger = b.Ledger.from_bytes(kv.entries[key].value)
            assert ledger.limit == cap
            assert ledger.allocated <= cap, (action, ledger)
            for number, (held, risk_book) in enumerate(zip(keepers, books)):
                budget, _ = risk_book.firm_budget(limit)
                assert budget is not None and budget <= ledger.allocations.get(f"gw{number}", 0), (action, ledger)
                assert held.budgets[limit] == budget            # the keeper knows what its book holds
            assert sum(risk_book.firm_budget(limit)[1] for risk_book in books) <= cap

    asyncio.run(play())
    # What the examples went through (--hypothesis-show-statistics): takes, give-backs, lost races.
    event(f"taken {any(k.taken for k in keepers)}, given back {any(k.given for k in keepers)}, "
          f"conflicts {any(k.conflicts for k in keepers)}")
