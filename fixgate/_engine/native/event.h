// The complete order event: what the engine's threads tell the state thread, one 256-byte C struct.
//
// A slot carries everything its consumer needs (ids, lots, ticks, the client's ids, the venue's ids,
// timestamps), so nothing is matched later by position. The same bytes are the journal's record and
// the intent log's record. Numbers are stable: they are stored on disk, so a kind or a flag is only
// ever added, never renumbered. NumPy's mirror of this layout is EVENT_DTYPE in engine.pyx.
#ifndef FIXGATE_ENGINE_EVENT_H
#define FIXGATE_ENGINE_EVENT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// -- KINDS ------------------------------------------------------------------------------------------

// Order events: the numbers of fixgate._fast.codes.EventKind.
#define FG_EVENT_ACCEPTED 1
#define FG_EVENT_REJECTED 2
#define FG_EVENT_ACKED 3
#define FG_EVENT_FILLED 4
#define FG_EVENT_CANCELED 5
#define FG_EVENT_REPLACE_ACCEPTED 6
#define FG_EVENT_REPLACED 7
#define FG_EVENT_REPLACE_REJECTED 8
#define FG_EVENT_VENUE_REJECTED 9
#define FG_EVENT_EXPIRED 10
#define FG_EVENT_CANCEL_REQUESTED 11
#define FG_EVENT_CANCEL_REJECTED 12
#define FG_EVENT_DONE_FOR_DAY 13
#define FG_EVENT_TRADE_CORRECTED 14   // a fill busted (ExecType H) or corrected (G) by the venue
#define FG_EVENT_RESTATED 15          // the venue restated the order's quantity (ExecType D)
// Engine events (not order state).
#define FG_EVENT_SESSION_LOGON 32      // session_id or venue_id set; flags: FG_FLAG_VENUE for a venue
#define FG_EVENT_SESSION_LOGOUT 33
#define FG_EVENT_ALARM 34              // code: an FG_ALARM_*; text_a: what happened
#define FG_EVENT_RECONCILED 35         // a difference found by reconciliation; text_a: what
#define FG_EVENT_VENUE_STATE 36        // status: FG_VENUE_*; text_a: why
#define FG_EVENT_LOGON_REFUSED 37      // text_a: the CompID, text_b: why

// -- FLAGS ------------------------------------------------------------------------------------------

#define FG_FLAG_VENUE 1                // the session of an engine event is a venue
#define FG_FLAG_GATEWAY 2              // a cancel the gateway sent on its own (kill, cancel-all, ...)
#define FG_FLAG_RECONCILED 4           // learnt by reconciliation with the venue
#define FG_FLAG_DUPLICATE 8            // a venue report already booked (relayed again, not booked)
#define FG_FLAG_OFF_GRID 16            // a fill off the lot grid: not booked

// -- ALARMS -----------------------------------------------------------------------------------------

#define FG_ALARM_INTERNAL_ERROR 1      // an exception on an engine thread
#define FG_ALARM_ERROR_AFTER_SEND 2    // an order went out, then something failed: it is live
#define FG_ALARM_FILL_OFF_LOT 3        // a venue fill not a whole number of lots
#define FG_ALARM_FILL_PRICE_OFF_TICK 4 // booked at the nearest tick
#define FG_ALARM_OVERFILL 5
#define FG_ALARM_VENUE_SESSION_REJECT 6   // 35=3 about an order or a request
#define FG_ALARM_VENUE_BUSINESS_REJECT 7  // 35=j about an order or a request
#define FG_ALARM_RECONCILIATION_REFUSED 8
#define FG_ALARM_SLOW_CONSUMER 9       // a peer that stopped reading was disconnected
#define FG_ALARM_RING_OVERFLOW 10      // events held in the overflow queue (none lost)
#define FG_ALARM_UNKNOWN_VENUE_ORDER 11   // live at the venue, unknown here: cancelled
#define FG_ALARM_UNKNOWN_VENUE_REPORT 12
#define FG_ALARM_ERROR_BEFORE_SEND 13  // a new order failed before it went out: released, the client told
#define FG_ALARM_UNKNOWN_FILL 14       // a fill on a ClOrdID the gateway does not hold: positions are off
#define FG_ALARM_TRADE_CORRECTED 15    // the venue busted or corrected a fill: positions and P&L moved

// -- VENUE STATES -----------------------------------------------------------------------------------

#define FG_VENUE_DOWN 0
#define FG_VENUE_RECONCILING 1
#define FG_VENUE_READY 2
#define FG_VENUE_REFUSED 3             // the venue refused reconciliation: not ready

// -- THE SLOT ---------------------------------------------------------------------------------------

#define FG_EVENT_BYTES 256
#define FG_TEXT_A 64
#define FG_TEXT_B 64
#define FG_TEXT_C 48

// Every order event but ACKED is also written ahead to the intent log (the same bytes, sent_ns
// aside) before any message that reveals it goes out; after a crash, recovery applies those whose
// seq is above the journal's last.
//
// Field use by kind (lots and ticks in the instrument's units; text fields NUL-terminated):
//   ACCEPTED          qty_lots, price_ticks (0 for market), ord_type, tif, side; text_a ClOrdID, text_b Account,
//                     text_c the order's id towards the venue ("<token>-<order_id>", also its OrderID to the client)
//   REJECTED          code, qty_lots/price_ticks as parsed (-1 invalid, 0 off-grid); text_a ClOrdID, text_b
//                     Account, text_c the symbol when the instrument is unknown (instrument_id -1)
//   ACKED             text_c the venue's OrderID
//   FILLED            qty_lots last qty, price_ticks last px, cum_lots after, aux the fill's cost in tick-lots;
//                     text_a the venue's ExecID, text_b the Account (empty: the session's), text_c the
//                     venue's OrderID
//   CANCEL_REQUESTED  aux request number; text_a the client's new ClOrdID (empty when the gateway cancels),
//                     text_b the ClOrdID it cancels; code: why the gateway cancels (FG_FLAG_GATEWAY)
//   REPLACE_ACCEPTED  aux request number, qty_lots/price_ticks the new terms; text_a new ClOrdID, text_b old
//   CANCELED ...      aux the request number that it answers (0 when unsolicited)
//   REPLACED          aux request number, qty_lots/price_ticks the new terms
//   REPLACE_REJECTED, CANCEL_REJECTED  aux request number
//   VENUE_REJECTED    code; text_a the venue's Text(58) (cut)
//   TRADE_CORRECTED   qty_lots the signed change of the filled quantity (a bust is negative; a correction is a
//                     bust of the old fill and a fill at the new terms, two events), price_ticks its price,
//                     cum_lots after, aux the signed cost; text_a the venue's ExecID of the correction, text_b
//                     the Account, text_c the venue's ExecID of the fill it corrects
//   RESTATED          qty_lots the new OrderQty, cum_lots; text_a the venue's Text(58) (cut)
//   ALARM             code an FG_ALARM_*; the text runs over text_a, text_b and text_c (176 bytes)
typedef struct fg_event {
    int64_t recv_ns;          // when the engine thread received the message that caused it
    int64_t sent_ns;          // when its answer was handed to QuickFIX (0 if none)
    int64_t order_id;         // the gateway's order id (0 for engine events)
    int64_t qty_lots;
    int64_t price_ticks;
    int64_t cum_lots;
    int64_t aux;
    int64_t seq;              // the engine's event sequence: every event numbered, in push order
    int32_t instrument_id;    // -1 when unknown
    int16_t session_id;       // the client's index (-1 none)
    int16_t venue_id;         // the venue's index (-1 none)
    uint8_t kind;
    uint8_t side;             // FIX Side(54) as a number: 1 buy, 2 sell, 5 sell short
    uint8_t ord_type;         // 1 market, 2 limit
    uint8_t tif;              // TimeInForce(59) as a number: 0 day, 1 GTC, 3 IOC, 4 FOK
    uint8_t status;           // FIX OrdStatus(39) character after the event (0 if none)
    uint8_t code;             // a RejectCode, or an FG_ALARM_*
    uint8_t flags;
    uint8_t reserved;
    char text_a[FG_TEXT_A];
    char text_b[FG_TEXT_B];
    char text_c[FG_TEXT_C];
} fg_event;

#ifdef __cplusplus
static_assert(sizeof(fg_event) == FG_EVENT_BYTES, "an event is 256 bytes");
}
#endif

#endif
