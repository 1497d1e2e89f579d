"""The FIX 4.4 codec: the only module that knows tag numbers.

Readers turn a QuickFIX message into a ``fixgate.core.messages`` value; writers build the QuickFIX
message for one. A required field that is missing raises ``quickfix.FieldNotFound``, which QuickFIX
answers with a session Reject (3).
"""

from __future__ import annotations

import calendar
import time
from typing import Union

import quickfix as fix
import quickfix44 as fix44

from fixgate.core.messages import (
    CancelReject,
    CancelRequest,
    Execution,
    MarketData,
    MarketDataEntry,
    MarketDataRequest,
    MassStatusRequest,
    NewOrder,
    ReplaceRequest,
    StatusRequest,
)

# -- TAGS -------------------------------------------------------------------------------------------

ACCOUNT = 1
AVG_PX = 6
CL_ORD_ID = 11
CUM_QTY = 14
EXEC_ID = 17
LAST_PX = 31
LAST_QTY = 32
MSG_TYPE = 35
ORDER_ID = 37
ORDER_QTY = 38
ORD_STATUS = 39
ORD_TYPE = 40
ORIG_CL_ORD_ID = 41
PRICE = 44
SENDING_TIME = 52
SIDE = 54
SYMBOL = 55
TEXT = 58
TIME_IN_FORCE = 59
TRANSACT_TIME = 60
CXL_REJ_REASON = 102
ORD_REJ_REASON = 103
EXEC_TYPE = 150
LEAVES_QTY = 151
MD_REQ_ID = 262
SUBSCRIPTION_REQUEST_TYPE = 263
MARKET_DEPTH = 264
MD_UPDATE_TYPE = 265
NO_MD_ENTRY_TYPES = 267
NO_MD_ENTRIES = 268
MD_ENTRY_TYPE = 269
MD_ENTRY_PX = 270
MD_ENTRY_SIZE = 271
MD_UPDATE_ACTION = 279
MD_ENTRY_POSITION_NO = 290
NO_RELATED_SYM = 146
CXL_REJ_RESPONSE_TO = 434
MASS_STATUS_REQ_ID = 584
MASS_STATUS_REQ_TYPE = 585
USERNAME = 553
PASSWORD = 554

# -- MESSAGE TYPES ----------------------------------------------------------------------------------

NEW_ORDER_SINGLE = "D"
ORDER_CANCEL_REQUEST = "F"
ORDER_CANCEL_REPLACE_REQUEST = "G"
ORDER_STATUS_REQUEST = "H"
ORDER_MASS_STATUS_REQUEST = "AF"
EXECUTION_REPORT = "8"
ORDER_CANCEL_REJECT = "9"
MARKET_DATA_REQUEST = "V"
MARKET_DATA_SNAPSHOT = "W"
MARKET_DATA_INCREMENTAL = "X"
MARKET_DATA_REQUEST_REJECT = "Y"
LOGON = "A"

MASS_STATUS_ALL_ORDERS = "7"


# -- READING ----------------------------------------------------------------------------------------

def split_fields(text: str) -> dict[str, str]:
    """Return every field of a raw FIX message by tag (as text); a repeated tag keeps its last value."""
    fields = {}
    for item in text.split("\x01"):
        tag, _, value = item.partition("=")
        fields[tag] = value
    return fields


class Received:
    """An incoming message read whole with one call into QuickFIX: its text, its fields, its MsgType.

    Each call into the binding releases and retakes the GIL, so a callback reads the message once
    and hands this to the message log and the readers, instead of each asking QuickFIX again. The
    QuickFIX message is kept for the readers of repeating groups.
    """

    __slots__ = ("message", "text", "fields", "msg_type", "read_ns")

    def __init__(self, message: fix.Message) -> None:
        started = time.perf_counter_ns()
        self.message = message
        self.text = message.toString()
        self.fields = split_fields(self.text)
        self.msg_type = self.fields.get("35", "")
        self.read_ns = time.perf_counter_ns() - started     # for the gateway's decode stage


Incoming = Union[fix.Message, Received]


class SessionNames:
    """A session's SessionID as text (``FIX.4.4:FIXGATE->CLIENT1``), asked of QuickFIX once per session.

    QuickFIX hands every callback a reference to the session's own SessionID, whose address stays the
    same for the life of the session; the address (read without a call into QuickFIX) is the key.
    One instance belongs to one engine's application, so addresses are never reused under it.
    """

    def __init__(self) -> None:
        self._names: dict[int, str] = {}

    def __call__(self, session_id: fix.SessionID) -> str:
        key = int(session_id.this)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = session_id.toString()
        return name


def _quickfix(message: Incoming) -> fix.Message:
    return message.message if isinstance(message, Received) else message


def _optional(message: fix.FieldMap | Received, tag: int) -> str | None:
    if isinstance(message, Received):
        return message.fields.get(str(tag))
    try:
        return message.getField(tag)
    except fix.FieldNotFound:
        return None


def message_type(message: Incoming) -> str:
    """Return MsgType(35)."""
    if isinstance(message, Received):
        return message.msg_type
    return message.getHeader().getField(MSG_TYPE)


def parse_utc_timestamp_ns(text: str) -> int:
    """Return nanoseconds since the epoch for a FIX UTCTimestamp (YYYYMMDD-HH:MM:SS[.fraction])."""
    seconds = calendar.timegm((int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]),
                               int(text[12:14]), int(text[15:17]), 0, 0, 0))
    fraction = text[18:] if len(text) > 18 else ""
    return seconds * 1_000_000_000 + (int(fraction.ljust(9, "0")[:9]) if fraction else 0)


_last_second: tuple[int, str] = (-1, "")


def format_utc_timestamp(now_ns: int) -> str:
    """Return a FIX UTCTimestamp with microseconds for `now_ns`.

    The text up to the second is formatted once per second and reused (strftime is most of the cost).
    """
    global _last_second
    seconds, rest = divmod(now_ns, 1_000_000_000)
    second, prefix = _last_second
    if second != seconds:
        prefix = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(seconds))
        _last_second = (seconds, prefix)
    return f"{prefix}.{rest // 1000:06d}"


def sending_time_ns(message: Incoming) -> int | None:
    """Return SendingTime(52) in nanoseconds, or None when absent or unreadable."""
    text = _optional(message if isinstance(message, Received) else message.getHeader(), SENDING_TIME)
    if text is None:
        return None
    try:
        return parse_utc_timestamp_ns(text)
    except ValueError:
        return None


def read_logon_credentials(message: Incoming) -> tuple[str | None, str | None]:
    """Return Username(553) and Password(554) of a Logon."""
    return _optional(message, USERNAME), _optional(message, PASSWORD)


def fields_of(message: Incoming) -> dict[str, str]:
    """Return every field of `message` by tag (as text): one call into QuickFIX, not one per field.

    Each call into the binding releases and retakes the GIL; reading a message whole and splitting it
    here is what keeps a busy gateway's threads from queueing for the GIL field by field. Repeating
    groups are not read this way (their tags repeat); the market-data readers use QuickFIX's groups.
    """
    if isinstance(message, Received):
        return message.fields
    return split_fields(message.toString())


def _required(fields: dict[str, str], tag: int) -> str:
    value = fields.get(str(tag))
    if value is None:
        raise fix.FieldNotFound(tag)
    return value


def read_new_order(message: Incoming) -> NewOrder:
    """Read a NewOrderSingle (D)."""
    fields = fields_of(message)
    return NewOrder(
        cl_ord_id=_required(fields, CL_ORD_ID),
        symbol=_required(fields, SYMBOL),
        side=_required(fields, SIDE),
        ord_type=_required(fields, ORD_TYPE),
        order_qty=fields.get("38"),
        price=fields.get("44"),
        time_in_force=fields.get("59") or "0",
        account=fields.get("1"),
    )


def read_cancel_request(message: Incoming) -> CancelRequest:
    """Read an OrderCancelRequest (F)."""
    fields = fields_of(message)
    return CancelRequest(
        cl_ord_id=_required(fields, CL_ORD_ID),
        orig_cl_ord_id=_required(fields, ORIG_CL_ORD_ID),
        symbol=_required(fields, SYMBOL),
        side=_required(fields, SIDE),
        order_qty=fields.get("38"),
        order_id=fields.get("37"),
    )


def read_replace_request(message: Incoming) -> ReplaceRequest:
    """Read an OrderCancelReplaceRequest (G)."""
    fields = fields_of(message)
    return ReplaceRequest(
        cl_ord_id=_required(fields, CL_ORD_ID),
        orig_cl_ord_id=_required(fields, ORIG_CL_ORD_ID),
        symbol=_required(fields, SYMBOL),
        side=_required(fields, SIDE),
        ord_type=_required(fields, ORD_TYPE),
        order_qty=fields.get("38"),
        price=fields.get("44"),
        time_in_force=fields.get("59") or "0",
        order_id=fields.get("37"),
    )


def read_status_request(message: Incoming) -> StatusRequest:
    """Read an OrderStatusRequest (H)."""
    fields = fields_of(message)
    return StatusRequest(
        cl_ord_id=_required(fields, CL_ORD_ID),
        symbol=_required(fields, SYMBOL),
        side=_required(fields, SIDE),
        order_id=fields.get("37"),
    )


def read_mass_status_request(message: Incoming) -> MassStatusRequest:
    """Read an OrderMassStatusRequest (AF)."""
    return MassStatusRequest(mass_status_req_id=_required(fields_of(message), MASS_STATUS_REQ_ID))


def read_market_data_request(message: Incoming) -> MarketDataRequest:
    """Read a MarketDataRequest (V)."""
    message = _quickfix(message)
    symbols = []
    group = fix44.MarketDataRequest.NoRelatedSym()
    for index in range(1, int(_optional(message, NO_RELATED_SYM) or 0) + 1):
        message.getGroup(index, group)
        symbols.append(group.getField(SYMBOL))
    return MarketDataRequest(md_req_id=message.getField(MD_REQ_ID), symbols=symbols,
                             subscribe=message.getField(SUBSCRIPTION_REQUEST_TYPE) != "2")


def read_execution(message: Incoming) -> Execution:
    """Read an ExecutionReport (8)."""
    fields = fields_of(message)
    get = fields.get
    return Execution(
        order_id=_required(fields, ORDER_ID),
        cl_ord_id=get("11") or "",
        exec_id=_required(fields, EXEC_ID),
        exec_type=_required(fields, EXEC_TYPE),
        ord_status=_required(fields, ORD_STATUS),
        symbol=_required(fields, SYMBOL),
        side=_required(fields, SIDE),
        leaves_qty=_required(fields, LEAVES_QTY),
        cum_qty=_required(fields, CUM_QTY),
        avg_px=_required(fields, AVG_PX),
        orig_cl_ord_id=get("41"),
        order_qty=get("38"),
        price=get("44"),
        ord_type=get("40"),
        time_in_force=get("59"),
        last_qty=get("32"),
        last_px=get("31"),
        text=get("58"),
        ord_rej_reason=get("103"),
        mass_status_req_id=get("584"),
    )


def read_cancel_reject(message: Incoming) -> CancelReject:
    """Read an OrderCancelReject (9)."""
    fields = fields_of(message)
    return CancelReject(
        order_id=_required(fields, ORDER_ID),
        cl_ord_id=_required(fields, CL_ORD_ID),
        orig_cl_ord_id=_required(fields, ORIG_CL_ORD_ID),
        ord_status=_required(fields, ORD_STATUS),
        response_to=_required(fields, CXL_REJ_RESPONSE_TO),
        reason=fields.get("102") or "99",
        text=fields.get("58"),
    )


def read_market_data(message: Incoming, incremental: bool) -> list[MarketData]:
    """Read a snapshot (W, one symbol) or an incremental refresh (X, entries of any symbols)."""
    message = _quickfix(message)
    sent_ns = sending_time_ns(message)
    md_req_id = _optional(message, MD_REQ_ID)
    if incremental:
        group = fix44.MarketDataIncrementalRefresh.NoMDEntries()
    else:
        group = fix44.MarketDataSnapshotFullRefresh.NoMDEntries()
        symbol = message.getField(SYMBOL)
    by_symbol: dict[str, MarketData] = {}
    for index in range(1, int(_optional(message, NO_MD_ENTRIES) or 0) + 1):
        message.getGroup(index, group)
        if incremental:
            symbol = _optional(group, SYMBOL) or ""
        position = _optional(group, MD_ENTRY_POSITION_NO)
        entry = MarketDataEntry(
            entry_type=group.getField(MD_ENTRY_TYPE),
            price=_optional(group, MD_ENTRY_PX),
            size=_optional(group, MD_ENTRY_SIZE),
            action=_optional(group, MD_UPDATE_ACTION) if incremental else None,
            position=int(position) if position else 1,
        )
        data = by_symbol.get(symbol)
        if data is None:
            data = by_symbol[symbol] = MarketData(symbol=symbol, incremental=incremental, md_req_id=md_req_id,
                                                   sending_time_ns=sent_ns)
        data.entries.append(entry)
    if not incremental and not by_symbol:
        by_symbol[symbol] = MarketData(symbol=symbol, incremental=False, md_req_id=md_req_id,
                                       sending_time_ns=sent_ns)
    return list(by_symbol.values())


# -- WRITING ----------------------------------------------------------------------------------------

def _new(msg_type: str) -> fix.Message:
    message = fix.Message()
    message.getHeader().setField(MSG_TYPE, msg_type)
    return message


def _set(message: fix.FieldMap, tag: int, value: str | None) -> None:
    if value is not None:
        message.setField(tag, value)


def _build(msg_type: str, fields: list[tuple[int, str | None]]) -> fix.Message:
    """Build a message from (tag, value) pairs in one call into QuickFIX (values None are left out).

    QuickFIX fills the header (CompIDs, MsgSeqNum, SendingTime) and computes BodyLength and CheckSum
    when it sends.
    """
    body = "".join(f"{tag}={value}\x01" for tag, value in fields if value is not None)
    return fix.Message(f"8=FIX.4.4\x019=0\x0135={msg_type}\x01{body}10=000\x01", False)


def write_logon_credentials(message: fix.Message, username: str, password: str) -> None:
    """Add Username(553) and Password(554) to an outgoing Logon."""
    message.setField(USERNAME, username)
    message.setField(PASSWORD, password)


def write_new_order(order: NewOrder, transact_ns: int) -> fix.Message:
    """Build a NewOrderSingle (D)."""
    return _build(NEW_ORDER_SINGLE, [
        (CL_ORD_ID, order.cl_ord_id), (ACCOUNT, order.account), (SYMBOL, order.symbol), (SIDE, order.side),
        (TRANSACT_TIME, format_utc_timestamp(transact_ns)), (ORDER_QTY, order.order_qty), (ORD_TYPE, order.ord_type),
        (PRICE, order.price), (TIME_IN_FORCE, order.time_in_force)])


def write_cancel_request(request: CancelRequest, transact_ns: int) -> fix.Message:
    """Build an OrderCancelRequest (F)."""
    return _build(ORDER_CANCEL_REQUEST, [
        (ORIG_CL_ORD_ID, request.orig_cl_ord_id), (ORDER_ID, request.order_id), (CL_ORD_ID, request.cl_ord_id),
        (SYMBOL, request.symbol), (SIDE, request.side), (TRANSACT_TIME, format_utc_timestamp(transact_ns)),
        (ORDER_QTY, request.order_qty)])


def write_replace_request(request: ReplaceRequest, transact_ns: int) -> fix.Message:
    """Build an OrderCancelReplaceRequest (G)."""
    return _build(ORDER_CANCEL_REPLACE_REQUEST, [
        (ORIG_CL_ORD_ID, request.orig_cl_ord_id), (ORDER_ID, request.order_id), (CL_ORD_ID, request.cl_ord_id),
        (SYMBOL, request.symbol), (SIDE, request.side), (TRANSACT_TIME, format_utc_timestamp(transact_ns)),
        (ORDER_QTY, request.order_qty), (ORD_TYPE, request.ord_type), (PRICE, request.price),
        (TIME_IN_FORCE, request.time_in_force)])


def write_status_request(request: StatusRequest) -> fix.Message:
    """Build an OrderStatusRequest (H)."""
    return _build(ORDER_STATUS_REQUEST, [(ORDER_ID, request.order_id), (CL_ORD_ID, request.cl_ord_id),
                                         (SYMBOL, request.symbol), (SIDE, request.side)])


def write_mass_status_request(request: MassStatusRequest) -> fix.Message:
    """Build an OrderMassStatusRequest (AF) for all orders."""
    return _build(ORDER_MASS_STATUS_REQUEST, [(MASS_STATUS_REQ_ID, request.mass_status_req_id),
                                              (MASS_STATUS_REQ_TYPE, MASS_STATUS_ALL_ORDERS)])


def write_execution(report: Execution) -> fix.Message:
    """Build an ExecutionReport (8)."""
    return _build(EXECUTION_REPORT, [
        (ORDER_ID, report.order_id), (CL_ORD_ID, report.cl_ord_id or None), (ORIG_CL_ORD_ID, report.orig_cl_ord_id),
        (MASS_STATUS_REQ_ID, report.mass_status_req_id), (EXEC_ID, report.exec_id), (EXEC_TYPE, report.exec_type),
        (ORD_STATUS, report.ord_status), (ORD_REJ_REASON, report.ord_rej_reason), (SYMBOL, report.symbol),
        (SIDE, report.side), (ORDER_QTY, report.order_qty), (ORD_TYPE, report.ord_type), (PRICE, report.price),
        (TIME_IN_FORCE, report.time_in_force), (LAST_QTY, report.last_qty), (LAST_PX, report.last_px),
        (LEAVES_QTY, report.leaves_qty), (CUM_QTY, report.cum_qty), (AVG_PX, report.avg_px),
        (TRANSACT_TIME, format_utc_timestamp(report.transact_time_ns) if report.transact_time_ns is not None
         else None), (TEXT, report.text)])


def write_cancel_reject(reject: CancelReject) -> fix.Message:
    """Build an OrderCancelReject (9)."""
    return _build(ORDER_CANCEL_REJECT, [
        (ORDER_ID, reject.order_id), (CL_ORD_ID, reject.cl_ord_id), (ORIG_CL_ORD_ID, reject.orig_cl_ord_id),
        (ORD_STATUS, reject.ord_status), (CXL_REJ_RESPONSE_TO, reject.response_to), (CXL_REJ_REASON, reject.reason),
        (TEXT, reject.text)])


def write_market_data_request(request: MarketDataRequest) -> fix.Message:
    """Build a MarketDataRequest (V): snapshot plus updates, top of book, bids, offers and trades."""
    message = _new(MARKET_DATA_REQUEST)
    message.setField(MD_REQ_ID, request.md_req_id)
    message.setField(SUBSCRIPTION_REQUEST_TYPE, "1" if request.subscribe else "2")
    message.setField(MARKET_DEPTH, "1")
    message.setField(MD_UPDATE_TYPE, "1")
    types = fix44.MarketDataRequest.NoMDEntryTypes()
    for entry_type in ("0", "1", "2"):
        types.setField(MD_ENTRY_TYPE, entry_type)
        message.addGroup(types)
    symbols = fix44.MarketDataRequest.NoRelatedSym()
    for symbol in request.symbols:
        symbols.setField(SYMBOL, symbol)
        message.addGroup(symbols)
    return message


def write_market_data(data: MarketData) -> fix.Message:
    """Build a snapshot (W) or an incremental refresh (X) for one symbol."""
    if data.incremental:
        message = _new(MARKET_DATA_INCREMENTAL)
        group = fix44.MarketDataIncrementalRefresh.NoMDEntries()
    else:
        message = _new(MARKET_DATA_SNAPSHOT)
        group = fix44.MarketDataSnapshotFullRefresh.NoMDEntries()
        message.setField(SYMBOL, data.symbol)
    _set(message, MD_REQ_ID, data.md_req_id)
    for entry in data.entries:
        if data.incremental:
            group.setField(MD_UPDATE_ACTION, entry.action or "1")
        group.setField(MD_ENTRY_TYPE, entry.entry_type)
        if data.incremental:
            group.setField(SYMBOL, data.symbol)
        _set(group, MD_ENTRY_PX, entry.price)
        _set(group, MD_ENTRY_SIZE, entry.size)
        group.setField(MD_ENTRY_POSITION_NO, str(entry.position))
        message.addGroup(group)
        group = type(group)()
    return message


def write_market_data_reject(md_req_id: str, text: str) -> fix.Message:
    """Build a MarketDataRequestReject (Y)."""
    message = _new(MARKET_DATA_REQUEST_REJECT)
    message.setField(MD_REQ_ID, md_req_id)
    message.setField(TEXT, text)
    return message
