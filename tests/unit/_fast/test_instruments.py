"""The instrument table: dense ids, limits converted to lots once, strict validation."""

import math

import pytest


def test_add_when_symbols_new_gives_dense_ids_and_lookups(impl):
    table = impl.Instruments(4)
    assert table.add("BTC-USD", tick_size=0.5, lot_size=0.001) == 0
    assert table.add("ETH-USD", tick_size=0.05, lot_size=0.01) == 1
    assert table.id_of("ETH-USD") == 1
    assert table.id_of("DOGE-USD") == -1
    assert table.symbol_of(0) == "BTC-USD"
    assert table.symbols == ["BTC-USD", "ETH-USD"]
    assert len(table) == 2 and "BTC-USD" in table and table.known(1) and not table.known(2)


def test_spec_when_limits_given_in_quantity_converts_them_to_lots(impl):
    table = impl.Instruments(4)
    table.add("BTC-USD", tick_size=0.5, lot_size=0.001, max_order_qty=2.5, max_position=0.3,
              adv=1000.0, max_adv_fraction=0.02, max_open_orders=7, price_collar=0.05)
    spec = table.spec(0)
    assert spec["max_order_lots"] == 2500
    assert spec["max_position_lots"] == 300
    assert spec["adv_limit_qty"] == 20.0
    assert spec["notional_unit"] == 0.0005
    assert spec["max_open_orders"] == 7


def test_spec_when_limits_absent_reads_as_unlimited(impl):
    table = impl.Instruments(1)
    table.add("XYZ", tick_size=0.01, lot_size=1)
    spec = table.spec(0)
    assert spec["max_order_lots"] is None and spec["max_position_lots"] is None
    assert spec["max_open_orders"] is None
    assert spec["price_collar"] == math.inf and spec["max_order_notional"] == math.inf
    assert spec["adv_limit_qty"] == math.inf


@pytest.mark.parametrize("field, value", [
    ("tick_size", 0.0), ("tick_size", -0.01), ("tick_size", math.nan), ("lot_size", 0.0),
    ("lot_size", math.inf), ("reference_price", -1.0), ("max_order_qty", -1.0),
    ("max_position", math.nan), ("price_collar", -0.1), ("max_open_orders", -1),
    ("stale_after_ns", 0), ("adv", -5.0),
])
def test_add_when_value_out_of_range_raises_naming_the_field(impl, field, value):
    table = impl.Instruments(2)
    spec = {"tick_size": 0.01, "lot_size": 1.0, field: value}
    with pytest.raises(ValueError, match=f"XYZ: {field}"):
        table.add("XYZ", **spec)
    assert len(table) == 0


def test_add_when_symbol_repeated_or_table_full_raises(impl):
    table = impl.Instruments(1)
    table.add("XYZ", tick_size=0.01, lot_size=1)
    with pytest.raises(ValueError, match="added twice"):
        table.add("XYZ", tick_size=0.01, lot_size=1)
    with pytest.raises(ValueError, match="full"):
        table.add("ABC", tick_size=0.01, lot_size=1)
    with pytest.raises(ValueError, match="empty"):
        impl.Instruments(2).add("", tick_size=0.01, lot_size=1)


def test_lookup_when_id_unknown_raises_key_error(impl):
    table = impl.Instruments(2)
    with pytest.raises(KeyError):
        table.symbol_of(0)
    with pytest.raises(KeyError):
        table.set_halted(5, True)


def test_instruments_when_capacity_out_of_range_raises(impl):
    with pytest.raises(ValueError, match="capacity"):
        impl.Instruments(0)
    with pytest.raises(ValueError, match="capacity"):
        impl.Instruments(65537)
