// The hot path's entry points as the engine calls them: C function pointers that engine.pyx fills
// with `noexcept nogil` wrappers around fixgate._fast (the risk book, its quote book and throttle,
// the reject describer). Every call is made with the engine lock held, so the book has one writer.
#ifndef FIXGATE_ENGINE_FAST_API_H
#define FIXGATE_ENGINE_FAST_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fg_fast_api {
    void* book;               // a fixgate._fast.risk.RiskBook, kept alive by the Python engine object
    void* describer;          // a fixgate._fast.describe.RejectDescriber

    // -- PRE-TRADE CHECKS -------------------------------------------------------------------------
    // lots / ticks: -1 not a valid number, 0 off the grid, > 0 whole units. On OK *order_id is the new id.
    int (*check_new_order)(void* book, int32_t session_id, int32_t instrument_id, int side, int ord_type,
                           int64_t qty_lots, int64_t price_ticks, int64_t now_ns, int64_t* order_id);
    int (*check_replace)(void* book, int64_t order_id, int64_t qty_lots, int64_t price_ticks, int64_t now_ns);

    // -- ORDER EVENTS -----------------------------------------------------------------------------
    int (*on_acked)(void* book, int64_t order_id);
    int (*on_filled)(void* book, int64_t order_id, int64_t qty_lots, int64_t price_ticks);
    int (*on_canceled)(void* book, int64_t order_id);
    int (*on_replaced)(void* book, int64_t order_id);
    int (*on_replace_rejected)(void* book, int64_t order_id);
    // A fill on an order the book no longer holds: the position moves all the same (returns OVERFILL).
    int (*on_loose_fill)(void* book, int32_t instrument_id, int side, int64_t qty_lots, int64_t price_ticks);
    // A venue's trade bust (delta < 0) or correction: the position moves, a live order's filled quantity too.
    int (*on_trade_corrected)(void* book, int64_t order_id, int32_t instrument_id, int side, int64_t delta_lots,
                              int64_t price_ticks);
    int (*on_restated)(void* book, int64_t order_id, int64_t qty_lots);
    // The venue's own message rate: may one more message go now (a refusal counts), and one went.
    int (*venue_conforms)(void* book, int venue, int64_t now_ns);
    void (*venue_take)(void* book, int venue, int64_t now_ns);

    // -- MARKET DATA ------------------------------------------------------------------------------
    int (*on_quote)(void* book, int32_t instrument_id, double bid, double ask, int64_t venue_ns, int64_t now_ns);
    int (*on_trade)(void* book, int32_t instrument_id, double price, int64_t venue_ns, int64_t now_ns);

    // -- READS ------------------------------------------------------------------------------------
    int (*risk_state)(void* book);
    int64_t (*live_orders)(void* book);
    // One of the gateway's firm budgets (kind: gross exposure, daily notional, daily orders, client
    // credit of `session`): read, set (op 1) or trim to usage + value (op 2); the budget after and its
    // usage go to *budget and *usage. Returns 0, -1 for an unknown kind or session or a bad value.
    int (*firm_budget)(void* book, int kind, int32_t session, int op, double value, double* budget, double* usage);
    // The reject sentence for Text(58), NUL-terminated in out; returns its length.
    ptrdiff_t (*describe)(void* describer, int code, int32_t instrument_id, int side, int ord_type, double qty,
                          double price, char* out, ptrdiff_t size);
} fg_fast_api;

#ifdef __cplusplus
}
#endif

#endif
