"""One table names every code; the Cython and reference tables are the same table."""

import re
from importlib import resources

from fixgate._fast import codes as fast
from fixgate.reference import codes as reference


def _c_enum(name):
    text = resources.files("fixgate._fast").joinpath("enums.pxd").read_text()
    block = re.search(rf"cdef enum {name}:\n((?:    .*\n|\n)+)", text).group(1)
    return {member: int(value) for member, value in re.findall(r"^    (\w+) = (\d+)", block, re.M)}


def test_reject_table_when_compared_to_c_enum_names_every_code_once():
    c_codes = _c_enum("RejectCode")
    del c_codes["CODE_COUNT"]
    assert {name: code for code, name, _ in fast.REJECT_TABLE} == c_codes
    assert len({code for code, _, _ in fast.REJECT_TABLE}) == len(fast.REJECT_TABLE)
    assert all(0 <= code < fast.CODE_LIMIT for code, _, _ in fast.REJECT_TABLE)
    assert all(text and text[0].islower() for _, _, text in fast.REJECT_TABLE)


def test_reference_tables_when_compared_to_fast_are_identical():
    assert reference.REJECT_TABLE == tuple((int(code), name, text) for code, name, text in fast.REJECT_TABLE)
    for enum in ("RejectCode", "Side", "OrdType", "RiskState", "EventKind"):
        assert ({member.name: int(member) for member in getattr(fast, enum)}
                == {member.name: int(member) for member in getattr(reference, enum)}), enum


def test_python_enums_when_compared_to_c_enums_carry_the_same_numbers():
    assert {m.name: int(m) for m in fast.Side} == _c_enum("Side")
    assert {m.name: int(m) for m in fast.OrdType} == _c_enum("OrdType")
    assert [int(m) for m in fast.RiskState] == sorted(_c_enum("RiskState").values())
    assert {f"EVENT_{m.name}": int(m) for m in fast.EventKind} == _c_enum("EventKind")


def test_reject_name_and_text_when_code_unknown_still_answer():
    assert fast.reject_name(5) == "THROTTLED"
    assert fast.reject_text(fast.RejectCode.THROTTLED) == "order rate limit exceeded"
    assert fast.reject_name(64) == "UNKNOWN_CODE_64"
    assert "64" in fast.reject_text(64)
