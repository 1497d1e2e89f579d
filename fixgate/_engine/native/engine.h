// The native order path: one FIX::Application for every session of the gateway.
//
// Clients connect to a ThreadedSocketAcceptor, venues are reached by a ThreadedSocketInitiator;
// QuickFIX owns the sessions (logon, heartbeats, sequence numbers, resend, stores). On QuickFIX's
// threads, without the GIL, the engine decodes the few fields a decision needs into whole lots and
// ticks, runs the hot path's checks (fixgate._fast, through fg_fast_api), keeps the client<->venue
// id maps, writes the intent ahead, sends, and pushes one complete event per state change on the
// event ring that the Python state thread drains.
//
// One writer: every decision and every change of order state (the ids, the maps, the risk book, the
// quote book, the throttle) happens with the engine lock held. Lock order: the engine lock, then a
// QuickFIX session's lock (taken inside Session::send), then an Outbox's lock. QuickFIX calls toApp,
// toAdmin and onLogout with a session's lock held, so those callbacks never take the engine lock.
// Nothing here ever takes the GIL, and no thread blocks on a peer's socket (see outbox.h).
#ifndef FIXGATE_ENGINE_ENGINE_H
#define FIXGATE_ENGINE_ENGINE_H

#include <stdint.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "quickfix/Application.h"
#include "quickfix/FileStore.h"
#include "quickfix/Message.h"
#include "quickfix/MessageStore.h"
#include "quickfix/Session.h"
#include "quickfix/SessionID.h"
#include "quickfix/SessionSettings.h"
#include "quickfix/ThreadedSocketAcceptor.h"
#include "quickfix/ThreadedSocketInitiator.h"
#include "quickfix/ThreadedSSLSocketAcceptor.h"
#include "quickfix/ThreadedSSLSocketInitiator.h"

#include "event.h"
#include "fast_api.h"
#include "hash_set.h"
#include "mapped_store.h"
#include "message_log.h"
#include "numbers.h"
#include "outbox.h"
#include "ring.h"

namespace fixgate {

// -- CONFIGURATION ----------------------------------------------------------------------------------

struct InstrumentConfig {
    std::string symbol;
    int venue = 0;
    int quote_backup = -1;               // the venue whose quotes stand in when the primary's go stale
    int64_t stale_ns = 2000000000;       // the primary is stale after this long without a quote
    Step lot;
    Step tick;
};

struct ClientConfig {
    std::string name;
    std::string comp_id;
    std::string username;
    std::string password;
    bool all_instruments = true;
    std::vector<int> instruments;        // permitted instrument ids when not all
    bool cancel_on_disconnect = true;
    std::vector<std::string> source_addresses;   // the addresses it may connect from; empty: any
    std::string certificate_name;        // the CN its TLS certificate must carry; empty: not checked
};

struct VenueConfig {
    std::string name;
    std::string comp_id;
    std::string username;
    std::string password;
    bool market_data = true;
};

struct EngineConfig {
    std::string comp_id;                 // the gateway's CompID on every session
    std::string token;                   // unique to this start: in order ids and venue ClOrdIDs
    std::string acceptor_settings;       // QuickFIX settings files ("" when there are no such sessions)
    bool acceptor_tls = false;           // the acceptor speaks TLS (its settings name the certificates)
    std::vector<std::string> initiator_settings;   // one initiator per file (venues grouped by TLS settings)
    std::vector<int> initiator_tls;                // per file: 1 when it speaks TLS
    std::string acceptor_address;        // the IPv4 address the client acceptor listens on ("": every interface)
    int acceptor_port = 0;
    std::string fixlog_dir;              // "" for no message logs
    int64_t fixlog_max_bytes = 0;        // a message or event log rotates past this size (0: daily only)
    std::string store_dir;               // where the sessions' stores live
    bool mapped_store = true;            // MappedStore (no system call per message), else QuickFIX's FileStore
    std::string intent_log;              // the write-ahead file of intents
    std::vector<InstrumentConfig> instruments;
    std::vector<ClientConfig> clients;
    std::vector<VenueConfig> venues;
    std::vector<std::string> reject_names;   // by RejectCode: the stable names of fixgate._fast.codes
    int64_t ring_capacity = 65536;
    int64_t max_queued_bytes = 16 << 20;     // per session, beyond what the socket holds
    int64_t stall_limit_ms = 5000;           // a peer that reads nothing for this long is disconnected
    int64_t retention_orders = 100000;       // finished orders kept in memory (status requests, late reports)
    int64_t reconcile_timeout_ms = 10000;
};

// -- ORDERS -----------------------------------------------------------------------------------------

enum RequestKind : uint8_t { REQUEST_NONE = 0, REQUEST_CANCEL = 1, REQUEST_REPLACE = 2 };

// A fill the venue reported, kept with its order so that a bust or a correction can undo it.
struct FillRecord {
    std::string exec_id;                 // the venue's ExecID (as stored: cut to FG_TEXT_A - 1)
    int64_t lots = 0;                    // as booked now (after any correction)
    int64_t ticks = 0;
    std::string correction_id;           // the ExecID of the last bust or correction of it
    bool busted = false;
};

// A cancel or replace sent to the venue: its venue ClOrdID is "<order's venue id root>.<number>".
struct Request {
    uint8_t kind = REQUEST_NONE;
    int64_t number = 0;
    std::string client_cl_ord_id;        // the client's new ClOrdID; empty when the gateway cancels
    std::string orig_client_cl_ord_id;   // the client's ClOrdID it refers to
    int64_t qty_lots = 0;                // a replace's new terms
    int64_t price_ticks = 0;
    uint8_t reason = 0;                  // why the gateway cancels (an FG cancel reason), 0 for a client's
    std::string text;                    // the gateway's reason, for the client's report
};

struct Order {
    int64_t id = 0;
    int session = -1;
    int instrument = -1;
    int venue = -1;
    char side = '1';                     // the client's Side(54)
    char ord_type = '2';
    char tif = '0';
    int64_t qty_lots = 0;
    int64_t price_ticks = 0;             // 0 for a market order
    int64_t cum_lots = 0;
    int64_t cost = 0;                    // sum of lots x ticks over the fills: the average price's numerator
    char status = 'A';                   // OrdStatus without the pending states (those are the requests)
    bool acked = false;
    bool in_book = true;                 // still reserves in the risk book
    bool finished = false;               // reached a terminal state (and queued to be forgotten)
    std::string cl_ord_id;               // the client's current ClOrdID
    std::vector<std::string> replaced_ids;   // client ClOrdIDs replaced away (OrdStatus 5 through them)
    std::vector<std::string> client_ids;     // every client ClOrdID that finds this order
    std::string account;
    std::string venue_cl_ord_id;         // the id the venue knows the order by now
    std::string venue_order_id;
    int64_t next_request = 0;
    Request cancel;                      // at most one pending cancel and one pending replace
    Request replace;
    int64_t reconcile_pending = 0;       // status requests sent for it and not yet answered
    std::vector<FillRecord> fills;       // the fills booked since the gateway started (busted ones marked)
};

// What the engine holds for one client session.
struct ClientState {
    ClientConfig config;
    int index = 0;
    FIX::SessionID id;
    const FIX::SessionID* callback_id = nullptr;    // the session's own SessionID, as callbacks get it
    FIX::Session* session = nullptr;
    std::unique_ptr<Outbox> outbox;
    std::atomic<bool> logged_on{false};
    std::vector<bool> permitted;                    // by instrument id
    HashSet64 used_ids;                             // every ClOrdID the client used today (hashes)
    std::unordered_map<std::string, int64_t> order_ids;   // ClOrdID -> id of an order held in memory
    std::string kill_reason;                        // engine lock: why the client's kill switch is on
};

// What the engine holds for one venue session.
struct VenueState {
    VenueConfig config;
    std::string closed_reason;           // "outside its session ...; opens ..." while it is (under lock_)
    int index = 0;
    FIX::SessionID id;
    const FIX::SessionID* callback_id = nullptr;
    FIX::Session* session = nullptr;
    std::unique_ptr<Outbox> outbox;
    std::atomic<bool> logged_on{false};
    std::atomic<int> state{FG_VENUE_DOWN};
    std::string state_reason;                        // engine lock
    int64_t reconcile_outstanding = 0;               // engine lock: status answers still awaited
    bool mass_status_done = true;
    std::string mass_status_id;
    int64_t reconcile_deadline_ns = 0;
    // Bid and ask of the top of book per instrument, from W and X (engine lock).
    std::vector<double> bids;
    std::vector<double> asks;
    std::vector<int64_t> quote_ns;       // when a whole bid and ask last came, per instrument (0: never)
    std::vector<int64_t> quote_venue_ns; // and the venue's timestamp of it
    // What each of our recent outgoing application messages was, by MsgSeqNum & mask, so that a
    // venue's Reject (35=3) or BusinessMessageReject (35=j) can be traced to its order.
    struct Sent {
        int64_t seq = 0;
        int64_t order_id = 0;
        int64_t request = 0;
        char msg_type[3] = {0, 0, 0};
    };
    std::vector<Sent> sent;
};

struct Counters {
    std::atomic<int64_t> received{0};            // client orders received
    std::atomic<int64_t> accepted{0};
    std::atomic<int64_t> rejected{0};
    std::atomic<int64_t> fills{0};
    std::atomic<int64_t> cancels{0};
    std::atomic<int64_t> replaces{0};
    std::atomic<int64_t> duplicate_fills{0};
    std::atomic<int64_t> reconciled{0};
    std::atomic<int64_t> unknown_venue_orders{0};
    std::atomic<int64_t> unknown_venue_reports{0};
    std::atomic<int64_t> callback_errors{0};
    std::atomic<int64_t> alarms{0};
    std::atomic<int64_t> messages_in{0};
    std::atomic<int64_t> status_requests{0};
    std::atomic<int64_t> late_venue_reports{0};     // a terminal report for an order already finished
    std::atomic<int64_t> rejected_by_code[64];
    Counters() {
        for (auto& count : rejected_by_code) count.store(0);
    }
};

// Stage clocks of the order path (ns): a log-linear histogram, 8 buckets per power of two (a value
// is known within 1/8 of itself). Bucket of v: v itself below 8, else 8 * (msb - 2) + the next 3 bits.
struct StageHistogram {
    static const int BUCKETS = 256;
    std::atomic<int64_t> buckets[BUCKETS];
    std::atomic<int64_t> count{0};
    StageHistogram() {
        for (auto& bucket : buckets) bucket.store(0);
    }
    static int bucket_of(int64_t ns) {
        uint64_t value = ns > 0 ? (uint64_t)ns : 0;
        if (value < 8) return (int)value;
        int msb = 63 - __builtin_clzll(value);
        int index = 8 * (msb - 2) + (int)((value >> (msb - 3)) & 7);
        return index < BUCKETS ? index : BUCKETS - 1;
    }
    void record(int64_t ns) {
        buckets[bucket_of(ns)].fetch_add(1, std::memory_order_relaxed);
        count.fetch_add(1, std::memory_order_relaxed);
    }
};

enum Stage { STAGE_DECODE = 0, STAGE_CHECKS, STAGE_JOURNAL, STAGE_ENCODE_SEND, STAGE_INTERNAL, STAGE_RELAY, STAGE_COUNT };

// Why the gateway cancels an order on its own (CANCEL_REQUESTED.code with FG_FLAG_GATEWAY).
enum CancelReason : uint8_t {
    CANCEL_BY_OPERATOR = 1, CANCEL_ON_DISCONNECT = 2, CANCEL_KILL_SWITCH = 3, CANCEL_CIRCUIT_BREAKER = 4,
    CANCEL_SHUTDOWN = 5, CANCEL_UNKNOWN_AT_VENUE = 6,
};

// The production ring, pushed by one thread and drained by another as the engine and the state
// thread use it; returns the ns per event.
double bench_event_ring(int64_t count, int64_t batch);

// A live order as recovery gives it back to the engine before start.
struct RestoredOrder {
    Order order;
    std::vector<std::string> client_ids;     // every ClOrdID of the order, for lookups
};

class Engine;

// A Logon with ResetSeqNumFlag(141)=Y makes QuickFIX reset the session's sequence numbers and store
// before the Application sees the message, so a wrong password would still wipe what the client has
// not received yet. The gate sees each incoming message first (through the session's Log): a client
// Logon asking for a reset with a wrong Username(553) or Password(554), or from an address the client
// may not connect from, is refused as an invalid message, and QuickFIX disconnects without touching
// the session's state.
class LogonGateLog : public FIX::Log {
public:
    LogonGateLog(FIX::Log* inner, Engine* engine, int client) : inner_(inner), engine_(engine), client_(client) {}
    void clear() override { inner_->clear(); }
    void backup() override { inner_->backup(); }
    void onIncoming(const std::string& message) override;
    void onOutgoing(const std::string& message) override { inner_->onOutgoing(message); }
    void onEvent(const std::string& text) override { inner_->onEvent(text); }

private:
    FIX::Log* inner_;
    Engine* engine_;
    int client_;
};

class LogonGateFactory : public FIX::LogFactory {
public:
    LogonGateFactory(FIX::LogFactory* inner, Engine* engine) : inner_(inner), engine_(engine) {}
    FIX::Log* create() override { return inner_->create(); }
    FIX::Log* create(const FIX::SessionID& id) override;
    void destroy(FIX::Log*) override {}     // the gates live as long as the factory

private:
    FIX::LogFactory* inner_;
    Engine* engine_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<LogonGateLog>> gates_;
};

class Engine : public FIX::Application {
public:
    Engine(const EngineConfig& config, const fg_fast_api& fast);
    ~Engine() override;

    // -- LIFE CYCLE (called from Python without the GIL) -------------------------------------------
    void start();
    // Log every session out, wait up to `logout_timeout_ms` for them, stop QuickFIX's threads.
    void stop(int64_t logout_timeout_ms);
    // Refuse every new order GATEWAY_CLOSED with `reason` as its Text(58) (a drain or a stop), or accept again.
    void set_accepting(bool accepting, const std::string& reason = std::string());

    // -- RECOVERY (before start) -------------------------------------------------------------------
    void restore_order(const RestoredOrder& restored);
    void restore_used_cl_ord_id(int session, const std::string& cl_ord_id);
    void restore_exec_id(const std::string& venue_exec_id);
    void restore_next_exec_id(int64_t next);
    void restore_next_event_seq(int64_t next);

    // -- COMMANDS (any thread without the GIL) -----------------------------------------------------
    // Cancel every live order (of `session` when >= 0); return how many cancels were sent.
    int64_t cancel_all(int session, uint8_t reason, const std::string& text);
    void log_out_venues(const std::string& reason);
    void log_on_venues();
    // Ask a venue the status of every order it holds for us; return how many requests were sent.
    int64_t reconcile(int venue);
    void set_risk_reason(const std::string& reason);
    void set_reduce_only_reason(const std::string& reason);   // why the book is reduce-only
    // Why orders are refused with `code` now (the firm's budgets): added to their Text(58); "" for none.
    void set_code_reason(int code, const std::string& reason);
    // Read, set or trim one of the book's firm budgets with the engine lock held, so no decision runs
    // between reading the usage and moving the budget (see fg_fast_api::firm_budget).
    int firm_budget(int kind, int session, int op, double value, double* budget, double* usage);
    // The logon gate's questions: which client a session is (-1: not a client), and whether a Logon's
    // credentials are the client's (a refusal is reported like fromAdmin's).
    int client_of(const FIX::SessionID& id) const;
    // Why the client's Logon is refused ("" when it is admitted): credentials, source address.
    std::string logon_refusal(int client, const std::string* username, const std::string* password);
    bool reset_logon_admitted(int client, const std::string& username, const std::string& password);
    void set_client_kill_reason(int session, const std::string& reason);   // the Text(58) of CLIENT_KILLED
    // One account's kill switch (the Account(1) of its orders, else its client's name): its new orders
    // and replaces are refused CLIENT_KILLED with `reason`; returns the cancels sent for its working orders.
    int64_t set_account_killed(const std::string& account, bool killed, const std::string& reason);
    int64_t rotate_intents(const std::string& previous_path);
    // Fault injection for tests: make the next `count` new orders fail just before, or just after,
    // their venue send.
    void inject_error_before_send(int64_t count) { inject_before_send_.store(count); }
    void inject_error_after_send(int64_t count) { inject_after_send_.store(count); }
    // ... and make the next application message's callback hang for `ms` (tests of the watchdog).
    void inject_stall(int64_t ms) { inject_stall_ms_.store(ms); }
    void forget_day();   // the trading day rolled: forget yesterday's ClOrdIDs and ExecIDs

    // -- BENCHMARKS --------------------------------------------------------------------------------
    // The whole per-message cost of an order through the engine with the sessions faked: a client
    // NewOrderSingle, the venue's New and Canceled reports, each parsed from its wire text as QuickFIX
    // would, handled by fromApp, answered (encoded to text, not sent). For an engine built without
    // sessions. Fills `samples` with the ns of each order's three messages; returns the orders done.
    int64_t bench_messages(int64_t count, int instrument, const std::string& price, std::vector<int64_t>& samples);

    // -- EVENTS (the state thread) -----------------------------------------------------------------
    int64_t drain(fg_event* out, int64_t limit);
    void wait_events(int64_t timeout_ms) { ring_.wait(timeout_ms); }
    void wake_consumer() { ring_.wake(); }

    // -- READS (any thread) ------------------------------------------------------------------------
    // The counters in this order: received, accepted, rejected, fills, cancels, replaces,
    // duplicate_fills, reconciled, unknown_venue_orders, unknown_venue_reports, callback_errors,
    // alarms, messages_in, status_requests, late_venue_reports, then rejected_by_code[0..63]. Returns
    // how many it wrote.
    int read_counters(int64_t* out, int size) const;
    // One stage's histogram (StageHistogram::BUCKETS buckets); returns the sample count.
    int64_t read_stage(int stage, int64_t* buckets, int size) const;
    int64_t ring_size() const { return ring_.size(); }
    int64_t ring_overflow_size() const { return ring_.overflow_size(); }
    int64_t ring_overflow_count() const { return ring_.overflow_count(); }
    int64_t ring_capacity() const { return ring_.capacity(); }
    bool client_logged_on(int index) const { return clients_[index]->logged_on.load(); }
    bool venue_logged_on(int index) const { return venues_[index]->logged_on.load(); }
    int venue_state(int index) const { return venues_[index]->state.load(); }
    std::string venue_state_reason(int index);
    std::string venue_connection(int index);     // "address:port" of the venue's live connection, "" when down
    int quote_source(int instrument);            // the venue whose quotes the book takes now
    void set_venue_closed_reason(int index, const std::string& reason);   // "" when in session
    int64_t outbox_queued_bytes(bool venue, int index) const;
    int64_t outbox_slow_count(bool venue, int index) const;
    // The longest time any engine thread has been inside a callback now (0 when none is), and the
    // age of the service thread's last pass, in ns.
    int64_t longest_callback_ns() const;
    int64_t service_age_ns() const;
    int64_t order_count();
    int64_t live_order_count();
    // One order's state as text lines "key=value" (tests and status): empty when unknown.
    std::string describe_order(int64_t order_id);
    std::vector<int64_t> live_order_ids();

    // -- FIX::Application --------------------------------------------------------------------------
    void onCreate(const FIX::SessionID&) override;
    void onLogon(const FIX::SessionID&) override;
    void onLogout(const FIX::SessionID&) override;
    void toAdmin(FIX::Message&, const FIX::SessionID&) override;
    void toApp(FIX::Message&, const FIX::SessionID&) throw(FIX::DoNotSend) override;
    void fromAdmin(const FIX::Message&, const FIX::SessionID&)
        throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::RejectLogon) override;
    void fromApp(const FIX::Message&, const FIX::SessionID&)
        throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue,
              FIX::UnsupportedMessageType) override;

private:
    struct SessionRef {
        bool venue = false;
        int index = -1;
    };
    SessionRef find_session(const FIX::SessionID& id);

    // -- client messages (engine lock held) --
    void on_new_order(ClientState& client, const FIX::Message& message, int64_t recv_ns, int64_t decode_ns);
    void on_cancel(ClientState& client, const FIX::Message& message, int64_t recv_ns);
    void on_replace(ClientState& client, const FIX::Message& message, int64_t recv_ns);
    void on_status(ClientState& client, const FIX::Message& message);
    void reject_new(ClientState& client, const FIX::Message& message, int code, const std::string& text,
                    int64_t recv_ns, int instrument, int64_t qty_lots, int64_t price_ticks, bool remember);
    void cancel_reject(ClientState& client, const FIX::Message& message, const Order* order, char response_to,
                       const char* reason, const std::string& text);
    Order* find_live(ClientState& client, const FIX::Message& message, char response_to);

    // -- venue messages (engine lock held) --
    void on_execution(VenueState& venue, const FIX::Message& message, int64_t recv_ns);
    void on_status_report(VenueState& venue, const FIX::Message& message, int64_t recv_ns);
    void on_venue_cancel_reject(VenueState& venue, const FIX::Message& message, int64_t recv_ns);
    void on_market_data(VenueState& venue, const FIX::Message& message, bool incremental, int64_t recv_ns);
    void on_venue_reject(VenueState& venue, const FIX::Message& message, bool business, int64_t recv_ns);
    void refuse_request(Order& order, uint8_t kind, char ord_status, const std::string& reason,
                        const std::string& text, int64_t recv_ns);
    void book_fill(VenueState& venue, Order& order, int64_t lots, int64_t ticks, const std::string& venue_exec_id,
                   uint8_t flags, int64_t recv_ns, const std::string& client_exec_id, char ord_status,
                   const std::string& text);
    void on_trade_correction(VenueState& venue, Order& order, const FIX::Message& message, char exec_type,
                             char ord_status, int64_t recv_ns);
    void correct_fill(Order& order, int64_t delta_lots, int64_t ticks, const std::string& exec_id,
                      const std::string& ref_exec_id, int64_t recv_ns);
    void on_restatement(VenueState& venue, Order& order, const FIX::Message& message, char ord_status,
                        int64_t recv_ns);

    // -- sending (engine lock held) --
    bool send_to_venue(VenueState& venue, FIX::Message& message, int64_t order_id, int64_t request);
    void send_to_client(int session, FIX::Message& message);
    FIX::Message execution_report(const Order& order, char exec_type, char ord_status,
                                  const std::string& cl_ord_id, const std::string& orig_cl_ord_id,
                                  const std::string& exec_id);
    bool send_cancel(Order& order, const std::string& client_cl_ord_id, const std::string& orig_client_cl_ord_id,
                     uint8_t reason, const std::string& text, int64_t recv_ns);
    void send_status_requests(VenueState& venue, Order& order);
    void relay_to_client(Order& order, FIX::Message& report);
    std::string venue_down_text(const VenueState& venue) const;
    void relay_resent(Order& order, FIX::Message& report);
    void relay_end_again(Order& order, char exec_type, const std::string& client_exec_id, const std::string& text);

    // -- state (engine lock held) --
    Order* find_order(int64_t id);
    Order* order_of_venue_id(const std::string& venue_cl_ord_id, int64_t& request);
    void finish(Order& order);
    void forget_finished();
    void release(Order& order, int event_kind, int code);
    std::string gateway_order_id(int64_t id) const;
    std::string next_exec_id();
    char visible_status(const Order& order) const;
    void set_venue_state(VenueState& venue, int state, const std::string& reason);
    void check_reconciled(VenueState& venue);

    // -- events (engine lock held) --
    fg_event order_event(uint8_t kind, const Order& order) const;
    void remember_client_id(Order& order, const std::string& cl_ord_id);
    // Number the event (if not yet), write it ahead when it is an order event not yet written (ACKED
    // aside), and put it on the ring.
    void push(fg_event& event, bool urgent = false);
    void alarm(int code, const std::string& text, int64_t order_id = 0);
    // Give `event` its sequence number and write it ahead to the intent log.
    void write_ahead(fg_event& event);
    void push_session_event(uint8_t kind, bool venue, int index, const std::string& text);

    // -- the service thread --
    void service_loop();
    void wake_service();
    void install_outbox(FIX::Session* session, Outbox* outbox);
    void send_watch_loop();
    void push_logon_refused(int client, const std::string& reason);
    std::string peer_address(FIX::Session* session);
    std::string peer_endpoint(FIX::Session* session, bool with_port);
    static int connection_fd(FIX::Responder* responder);
    std::string peer_certificate_name(FIX::Session* session);
    std::string reject_text(int code, const std::string& sentence) const;
    std::string describe(int code, int instrument, int side, int ord_type, double qty, double price);

    EngineConfig config_;
    fg_fast_api fast_;
    std::mutex lock_;                                   // THE engine lock: one writer for order state
    EventRing ring_;
    std::vector<std::unique_ptr<ClientState>> clients_;
    std::unordered_map<std::string, std::string> killed_accounts_;   // engine lock: account -> why
    std::vector<std::unique_ptr<VenueState>> venues_;
    std::unordered_map<std::string, int> symbols_;      // symbol -> instrument id
    std::vector<std::pair<const FIX::SessionID*, SessionRef>> callback_ids_;  // filled in onCreate
    std::unordered_map<int64_t, Order> orders_;         // live orders and recently finished ones
    std::deque<int64_t> finished_;                      // finished order ids, oldest first
    HashSet64 seen_exec_ids_;                           // venue ExecIDs of fills booked today (hashes)
    int64_t next_exec_id_ = 1;
    int64_t next_internal_id_ = 1;                      // mass status and unknown-order cancel ids
    int64_t next_event_seq_ = 1;
    std::string risk_reason_;
    static const int CODE_REASONS = 64;
    std::string code_reasons_[CODE_REASONS];    // engine lock: why, added to the Text(58) of a reject by code
    std::atomic<bool> accepting_{true};
    std::mutex closed_mutex_;            // a leaf: guards closed_reason_
    std::string closed_reason_;
    std::string closed_reason();         // why new orders are refused while not accepting
    std::atomic<int64_t> inject_before_send_{0};
    std::atomic<int64_t> inject_after_send_{0};
    std::atomic<int64_t> inject_stall_ms_{0};
    int intent_fd_ = -1;
    Counters counters_;
    StageHistogram stages_[STAGE_COUNT];

    // QuickFIX
    struct InitiatorParts {
        std::unique_ptr<FIX::SessionSettings> settings;
        std::unique_ptr<FIX::MessageStoreFactory> store;
        std::unique_ptr<FIX::Initiator> initiator;
    };
    std::unique_ptr<FIX::SessionSettings> acceptor_settings_;
    std::unique_ptr<FIX::MessageStoreFactory> acceptor_store_;
    std::unique_ptr<FIX::LogFactory> log_factory_;
    MaskedLogFactory* masked_logs_ = nullptr;
    std::unique_ptr<FIX::LogFactory> gate_factory_;      // wraps log_factory_: the logon gate
    std::unique_ptr<FIX::Acceptor> acceptor_;
    std::vector<InitiatorParts> initiators_;

    // the service thread: outboxes, cancels on disconnect, reconciliation on logon, log flushes
    std::vector<int> quote_source_;      // per instrument: the venue fed to the quote book (under lock_)
    void check_quote_sources(int64_t now_ns);
    std::thread service_;
    std::thread send_watch_;             // cuts TLS sends blocked past the stall limit (see send_watch_loop)
    std::atomic<bool> service_stop_{false};
    std::atomic<int64_t> service_beat_ns_{0};
    int service_wake_fd_ = -1;
    std::mutex service_mutex_;                          // a leaf: guards service_tasks_
    std::deque<std::pair<int, int>> service_tasks_;     // (task, index)
    bool started_ = false;
    bool stopped_ = false;
    bool dry_sessions_ = false;                         // bench_messages: encode answers, send nothing

    // the watchdog: when each engine thread entered the callback it is in (0 when outside)
    static const int WATCH_SLOTS = 64;
    std::atomic<int64_t> busy_since_[WATCH_SLOTS];
    std::atomic<int> next_slot_{0};
    friend struct CallbackScope;
};

}  // namespace fixgate

#endif
