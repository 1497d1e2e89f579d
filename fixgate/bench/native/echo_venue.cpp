#include "echo_venue.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include <quickfix/Application.h>
#include <quickfix/FileStore.h>
#include <quickfix/MessageStore.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/ThreadedSocketAcceptor.h>
#include <quickfix/fix44/MarketDataRequest.h>
#include <quickfix/fix44/MarketDataSnapshotFullRefresh.h>

#include "peer_runtime.h"

namespace fixgate {
namespace bench {
namespace {

// -- VALUES -----------------------------------------------------------------------------------------

enum class EchoMode { acknowledge, fill, cancel_immediate_or_cancel };

const char* const kDefaultBidPrice = "99.99";
const char* const kDefaultOfferPrice = "100.01";
const char* const kMarketOrderFillPrice = "100";   // the LastPx of a market order in `fill` mode
const char* const kUnknownOrderId = "NONE";
const char* const kNotApplicableSymbol = "[N/A]";  // FIX's placeholder for a report about no instrument
const char kSideUndisclosed = '7';

const int64_t kLogoutWaitNs = 3'000'000'000;
const int64_t kIdleWaitNs = 1'000'000'000;
const int kSocketBufferBytes = 1 << 20;
const size_t kReservedOrdersPerSession = 1 << 16;

EchoMode parse_mode(const std::string& mode) {
  if (mode == "ack") return EchoMode::acknowledge;
  if (mode == "fill") return EchoMode::fill;
  if (mode == "ioc") return EchoMode::cancel_immediate_or_cancel;
  throw std::invalid_argument("mode: expected one of ack, fill, ioc; found '" + mode + "'");
}

bool is_immediate_or_cancel(char time_in_force) { return time_in_force == '3' || time_in_force == '4'; }

// -- ORDER STATE ------------------------------------------------------------------------------------

// An order that rests at the venue (acknowledged, not done). Prices and quantities keep the text the
// client sent: the echo venue never does arithmetic on them.
struct RestingOrder {
  std::string order_id;
  std::string symbol;
  std::string quantity;
  std::string price;        // empty for a market order
  char side = '1';
  char order_type = '2';
  char time_in_force = '0';
};

// The resting orders of one session, by ClOrdID.
//
// Written and read by the session's connection thread (QuickFIX calls fromApp for a session from one
// thread at a time); the mutex covers the moment a second connection of the same session is turned
// away while the first still runs. Uncontended, it costs tens of nanoseconds.
struct SessionBook {
  FIX::Session* session = nullptr;  // written once before the acceptor starts, then read only
  std::mutex mutex;
  std::unordered_map<std::string, RestingOrder> orders_by_cl_ord_id;
};

// Counters over every session: written by any connection thread, read at the end of the run.
struct VenueCounters {
  std::atomic<int64_t> logons{0};
  std::atomic<int64_t> logouts{0};
  std::atomic<int64_t> orders_received{0};
  std::atomic<int64_t> cancels_received{0};
  std::atomic<int64_t> replaces_received{0};
  std::atomic<int64_t> status_requests_received{0};
  std::atomic<int64_t> mass_status_requests_received{0};
  std::atomic<int64_t> market_data_requests_received{0};
  std::atomic<int64_t> execution_reports_sent{0};
  std::atomic<int64_t> cancel_rejects_sent{0};
  std::atomic<int64_t> market_data_snapshots_sent{0};
  std::atomic<int64_t> send_failures{0};
  std::atomic<int64_t> unsupported_messages{0};
  std::atomic<int64_t> callback_errors{0};
};

const std::string& optional_field(const FIX::FieldMap& message, int tag, const std::string& absent) {
  const FIX::FieldBase* field = message.isSetField(tag) ? &message.getFieldRef(tag) : nullptr;
  return field != nullptr ? field->getString() : absent;
}

char first_char(const std::string& text, char absent) { return text.empty() ? absent : text[0]; }

// -- THE APPLICATION --------------------------------------------------------------------------------

class EchoVenueApplication : public FIX::Application {
 public:
  EchoVenueApplication(EchoMode mode, const std::vector<EchoQuote>& quotes, std::string quote_size)
      : mode_(mode), quote_size_(std::move(quote_size)) {
    for (const EchoQuote& quote : quotes) {
      quotes_by_symbol_[quote.symbol] = quote;
    }
  }

  // Find each session's Session object once, before the acceptor starts (no lookup per message).
  void attach(FIX::Acceptor& acceptor) {
    for (auto& entry : books_) {
      entry.second->session = acceptor.getSession(entry.first);
      if (entry.second->session == nullptr) {
        throw std::runtime_error("echo venue: QuickFIX created no session for " + entry.first.toString());
      }
    }
  }

  // Log every logged-on session out and wait up to `timeout_ns` for the logouts to complete.
  void log_out_all(int64_t timeout_ns) {
    for (auto& entry : books_) {
      if (entry.second->session != nullptr && entry.second->session->isLoggedOn()) {
        entry.second->session->logout("echo venue stopping");
      }
    }
    const int64_t deadline = monotonic_ns() + timeout_ns;
    while (monotonic_ns() < deadline && any_logged_on()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  bool any_logged_on() {
    for (auto& entry : books_) {
      if (entry.second->session != nullptr && entry.second->session->isLoggedOn()) {
        return true;
      }
    }
    return false;
  }

  int64_t resting_orders() {
    int64_t count = 0;
    for (auto& entry : books_) {
      std::lock_guard<std::mutex> lock(entry.second->mutex);
      count += static_cast<int64_t>(entry.second->orders_by_cl_ord_id.size());
    }
    return count;
  }

  const VenueCounters& counters() const { return counters_; }

  // -- QuickFIX callbacks

  // Called while the acceptor is built, on the building thread, before any connection thread runs:
  // books_ is complete before the first fromApp and read only afterwards.
  void onCreate(const FIX::SessionID& session_id) override {
    guard(counters_.callback_errors, [&] {
      std::unique_ptr<SessionBook> book(new SessionBook());
      // Room for the first 64 Ki resting orders before the map rehashes (a pause of its own).
      book->orders_by_cl_ord_id.reserve(kReservedOrdersPerSession);
      books_[session_id] = std::move(book);
    });
  }

  void onLogon(const FIX::SessionID&) override { counters_.logons.fetch_add(1, std::memory_order_relaxed); }

  void onLogout(const FIX::SessionID&) override { counters_.logouts.fetch_add(1, std::memory_order_relaxed); }

  void toAdmin(FIX::Message&, const FIX::SessionID&) override {}

  void toApp(FIX::Message&, const FIX::SessionID&) throw(FIX::DoNotSend) override {}

  // Every Logon is welcome: the echo venue checks no credentials.
  void fromAdmin(const FIX::Message&, const FIX::SessionID&) throw(FIX::FieldNotFound, FIX::IncorrectDataFormat,
                                                                   FIX::IncorrectTagValue,
                                                                   FIX::RejectLogon) override {}

  void fromApp(const FIX::Message& message, const FIX::SessionID& session_id) throw(
      FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::UnsupportedMessageType) override {
    guard_from_app(counters_.callback_errors, [&] { dispatch(message, session_id); });
  }

 private:
  // -- dispatch by MsgType

  void dispatch(const FIX::Message& message, const FIX::SessionID& session_id) {
    const std::string& message_type = message.getHeader().getField(FIX::FIELD::MsgType);
    auto found = books_.find(session_id);
    if (found == books_.end()) {
      throw std::logic_error("echo venue: a message for a session it never created");
    }
    SessionBook& book = *found->second;
    if (message_type.size() == 1) {
      switch (message_type[0]) {
        case 'D': on_new_order_single(message, book); return;
        case 'F': on_order_cancel_request(message, book); return;
        case 'G': on_order_cancel_replace_request(message, book); return;
        case 'H': on_order_status_request(message, book); return;
        case 'V': on_market_data_request(message, book); return;
        default: break;
      }
    } else if (message_type == "AF") {
      on_order_mass_status_request(message, book);
      return;
    }
    counters_.unsupported_messages.fetch_add(1, std::memory_order_relaxed);
    throw FIX::UnsupportedMessageType();
  }

  // -- handlers

  void on_new_order_single(const FIX::Message& message, SessionBook& book) {
    counters_.orders_received.fetch_add(1, std::memory_order_relaxed);
    const std::string& cl_ord_id = message.getField(FIX::FIELD::ClOrdID);
    RestingOrder order;
    order.symbol = message.getField(FIX::FIELD::Symbol);
    order.side = first_char(message.getField(FIX::FIELD::Side), '1');
    order.order_type = first_char(message.getField(FIX::FIELD::OrdType), '2');
    order.quantity = optional_field(message, FIX::FIELD::OrderQty, zero_);
    order.price = optional_field(message, FIX::FIELD::Price, empty_);
    order.time_in_force = first_char(optional_field(message, FIX::FIELD::TimeInForce, empty_), '0');
    order.order_id = next_order_id();

    const bool rests = mode_ == EchoMode::acknowledge ||
                       (mode_ == EchoMode::cancel_immediate_or_cancel && !is_immediate_or_cancel(order.time_in_force));
    if (rests) {
      std::lock_guard<std::mutex> lock(book.mutex);
      if (!book.orders_by_cl_ord_id.emplace(cl_ord_id, order).second) {
        send_duplicate_order_reject(book, order, cl_ord_id);
        return;
      }
    }
    FIX::Message acknowledged = execution_report(order, cl_ord_id, '0', '0');
    set_progress(acknowledged, order.quantity, zero_, zero_);
    send(book, acknowledged, counters_.execution_reports_sent);

    if (mode_ == EchoMode::fill) {
      const std::string& fill_price = order.price.empty() ? market_fill_price_ : order.price;
      FIX::Message filled = execution_report(order, cl_ord_id, 'F', '2');
      filled.setField(FIX::FIELD::LastQty, order.quantity);
      filled.setField(FIX::FIELD::LastPx, fill_price);
      set_progress(filled, zero_, order.quantity, fill_price);
      send(book, filled, counters_.execution_reports_sent);
    } else if (mode_ == EchoMode::cancel_immediate_or_cancel && !rests) {
      FIX::Message canceled = execution_report(order, cl_ord_id, '4', '4');
      set_progress(canceled, zero_, zero_, zero_);
      send(book, canceled, counters_.execution_reports_sent);
    }
  }

  void on_order_cancel_request(const FIX::Message& message, SessionBook& book) {
    counters_.cancels_received.fetch_add(1, std::memory_order_relaxed);
    const std::string& cl_ord_id = message.getField(FIX::FIELD::ClOrdID);
    const std::string& orig_cl_ord_id = message.getField(FIX::FIELD::OrigClOrdID);
    RestingOrder order;
    bool found = false;
    {
      std::lock_guard<std::mutex> lock(book.mutex);
      auto resting = book.orders_by_cl_ord_id.find(orig_cl_ord_id);
      if (resting != book.orders_by_cl_ord_id.end()) {
        order = std::move(resting->second);
        book.orders_by_cl_ord_id.erase(resting);
        found = true;
      }
    }
    if (!found) {
      send_cancel_reject(book, cl_ord_id, orig_cl_ord_id, '1');
      return;
    }
    FIX::Message canceled = execution_report(order, cl_ord_id, '4', '4');
    canceled.setField(FIX::FIELD::OrigClOrdID, orig_cl_ord_id);
    set_progress(canceled, zero_, zero_, zero_);
    send(book, canceled, counters_.execution_reports_sent);
  }

  void on_order_cancel_replace_request(const FIX::Message& message, SessionBook& book) {
    counters_.replaces_received.fetch_add(1, std::memory_order_relaxed);
    const std::string& cl_ord_id = message.getField(FIX::FIELD::ClOrdID);
    const std::string& orig_cl_ord_id = message.getField(FIX::FIELD::OrigClOrdID);
    RestingOrder order;
    bool replaced = false;
    {
      std::lock_guard<std::mutex> lock(book.mutex);
      auto resting = book.orders_by_cl_ord_id.find(orig_cl_ord_id);
      if (resting != book.orders_by_cl_ord_id.end() &&
          (cl_ord_id == orig_cl_ord_id || book.orders_by_cl_ord_id.count(cl_ord_id) == 0)) {
        order = std::move(resting->second);
        book.orders_by_cl_ord_id.erase(resting);
        order.quantity = optional_field(message, FIX::FIELD::OrderQty, order.quantity);
        order.price = optional_field(message, FIX::FIELD::Price, order.price);
        order.order_type = first_char(optional_field(message, FIX::FIELD::OrdType, empty_), order.order_type);
        book.orders_by_cl_ord_id.emplace(cl_ord_id, order);
        replaced = true;
      }
    }
    if (!replaced) {
      send_cancel_reject(book, cl_ord_id, orig_cl_ord_id, '2');
      return;
    }
    FIX::Message report = execution_report(order, cl_ord_id, '5', '0');
    report.setField(FIX::FIELD::OrigClOrdID, orig_cl_ord_id);
    set_progress(report, order.quantity, zero_, zero_);
    send(book, report, counters_.execution_reports_sent);
  }

  void on_order_status_request(const FIX::Message& message, SessionBook& book) {
    counters_.status_requests_received.fetch_add(1, std::memory_order_relaxed);
    const std::string& cl_ord_id = message.getField(FIX::FIELD::ClOrdID);
    RestingOrder order;
    bool found = false;
    {
      std::lock_guard<std::mutex> lock(book.mutex);
      auto resting = book.orders_by_cl_ord_id.find(cl_ord_id);
      if (resting != book.orders_by_cl_ord_id.end()) {
        order = resting->second;
        found = true;
      }
    }
    if (found) {
      FIX::Message report = execution_report(order, cl_ord_id, 'I', '0');
      set_progress(report, order.quantity, zero_, zero_);
      send(book, report, counters_.execution_reports_sent);
      return;
    }
    order.order_id = kUnknownOrderId;
    order.symbol = optional_field(message, FIX::FIELD::Symbol, not_applicable_symbol_);
    order.side = first_char(optional_field(message, FIX::FIELD::Side, empty_), kSideUndisclosed);
    FIX::Message report = unknown_order_status_report(order, cl_ord_id);
    send(book, report, counters_.execution_reports_sent);
  }

  void on_order_mass_status_request(const FIX::Message& message, SessionBook& book) {
    counters_.mass_status_requests_received.fetch_add(1, std::memory_order_relaxed);
    const std::string& mass_status_req_id = message.getField(FIX::FIELD::MassStatusReqID);
    std::vector<std::pair<std::string, RestingOrder>> resting;
    {
      std::lock_guard<std::mutex> lock(book.mutex);
      resting.assign(book.orders_by_cl_ord_id.begin(), book.orders_by_cl_ord_id.end());
    }
    if (resting.empty()) {
      RestingOrder none;
      none.order_id = kUnknownOrderId;
      none.symbol = kNotApplicableSymbol;
      none.side = kSideUndisclosed;
      FIX::Message report = unknown_order_status_report(none, empty_);
      report.setField(FIX::FIELD::MassStatusReqID, mass_status_req_id);
      report.setField(FIX::FIELD::TotNumReports, "0");
      report.setField(FIX::FIELD::LastRptRequested, "Y");
      send(book, report, counters_.execution_reports_sent);
      return;
    }
    const std::string total = std::to_string(resting.size());
    for (size_t index = 0; index < resting.size(); ++index) {
      FIX::Message report = execution_report(resting[index].second, resting[index].first, 'I', '0');
      set_progress(report, resting[index].second.quantity, zero_, zero_);
      report.setField(FIX::FIELD::MassStatusReqID, mass_status_req_id);
      report.setField(FIX::FIELD::TotNumReports, total);
      if (index + 1 == resting.size()) {
        report.setField(FIX::FIELD::LastRptRequested, "Y");
      }
      send(book, report, counters_.execution_reports_sent);
    }
  }

  void on_market_data_request(const FIX::Message& message, SessionBook& book) {
    counters_.market_data_requests_received.fetch_add(1, std::memory_order_relaxed);
    const std::string& md_req_id = message.getField(FIX::FIELD::MDReqID);
    if (optional_field(message, FIX::FIELD::SubscriptionRequestType, empty_) == "2") {
      return;  // an unsubscribe: nothing is published after the snapshot anyway
    }
    FIX44::MarketDataRequest::NoRelatedSym related;
    const size_t symbols = message.groupCount(FIX::FIELD::NoRelatedSym);
    for (size_t index = 1; index <= symbols; ++index) {
      message.getGroup(static_cast<unsigned>(index), related);
      const std::string& symbol = related.getField(FIX::FIELD::Symbol);
      auto quote = quotes_by_symbol_.find(symbol);
      FIX::Message snapshot;
      snapshot.getHeader().setField(FIX::FIELD::MsgType, "W");
      snapshot.setField(FIX::FIELD::MDReqID, md_req_id);
      snapshot.setField(FIX::FIELD::Symbol, symbol);
      FIX44::MarketDataSnapshotFullRefresh::NoMDEntries entry;
      entry.setField(FIX::FIELD::MDEntryType, "0");
      entry.setField(FIX::FIELD::MDEntryPx, quote != quotes_by_symbol_.end() ? quote->second.bid_price
                                                                               : std::string(kDefaultBidPrice));
      entry.setField(FIX::FIELD::MDEntrySize, quote_size_);
      snapshot.addGroup(entry);
      entry.setField(FIX::FIELD::MDEntryType, "1");
      entry.setField(FIX::FIELD::MDEntryPx, quote != quotes_by_symbol_.end() ? quote->second.offer_price
                                                                               : std::string(kDefaultOfferPrice));
      snapshot.addGroup(entry);
      send(book, snapshot, counters_.market_data_snapshots_sent);
    }
  }

  // -- writing

  // An ExecutionReport with the order's identity and terms; the caller adds the quantities.
  FIX::Message execution_report(const RestingOrder& order, const std::string& cl_ord_id, char exec_type,
                                char ord_status) {
    FIX::Message report;
    report.getHeader().setField(FIX::FIELD::MsgType, "8");
    report.setField(FIX::FIELD::OrderID, order.order_id);
    if (!cl_ord_id.empty()) {
      report.setField(FIX::FIELD::ClOrdID, cl_ord_id);
    }
    report.setField(FIX::FIELD::ExecID, next_exec_id());
    report.setField(FIX::FIELD::ExecType, std::string(1, exec_type));
    report.setField(FIX::FIELD::OrdStatus, std::string(1, ord_status));
    report.setField(FIX::FIELD::Symbol, order.symbol);
    report.setField(FIX::FIELD::Side, std::string(1, order.side));
    if (!order.quantity.empty()) {
      report.setField(FIX::FIELD::OrderQty, order.quantity);
    }
    report.setField(FIX::FIELD::OrdType, std::string(1, order.order_type));
    if (!order.price.empty()) {
      report.setField(FIX::FIELD::Price, order.price);
    }
    report.setField(FIX::FIELD::TimeInForce, std::string(1, order.time_in_force));
    char transact_time[25];
    format_utc_timestamp_now(transact_time);
    report.setField(FIX::FIELD::TransactTime, transact_time);
    return report;
  }

  static void set_progress(FIX::Message& report, const std::string& leaves_qty, const std::string& cum_qty,
                           const std::string& avg_px) {
    report.setField(FIX::FIELD::LeavesQty, leaves_qty);
    report.setField(FIX::FIELD::CumQty, cum_qty);
    report.setField(FIX::FIELD::AvgPx, avg_px);
  }

  // ExecType=I OrdStatus=8 for an order the venue does not know (or no longer knows); without a
  // ClOrdID when `cl_ord_id` is empty (the answer to a mass status request with no order resting).
  FIX::Message unknown_order_status_report(const RestingOrder& order, const std::string& cl_ord_id) {
    FIX::Message report;
    report.getHeader().setField(FIX::FIELD::MsgType, "8");
    report.setField(FIX::FIELD::OrderID, order.order_id);
    if (!cl_ord_id.empty()) {
      report.setField(FIX::FIELD::ClOrdID, cl_ord_id);
    }
    report.setField(FIX::FIELD::ExecID, next_exec_id());
    report.setField(FIX::FIELD::ExecType, "I");
    report.setField(FIX::FIELD::OrdStatus, "8");
    report.setField(FIX::FIELD::OrdRejReason, "5");  // unknown order
    report.setField(FIX::FIELD::Symbol, order.symbol);
    report.setField(FIX::FIELD::Side, std::string(1, order.side));
    set_progress(report, zero_, zero_, zero_);
    report.setField(FIX::FIELD::Text, "unknown order");
    return report;
  }

  void send_duplicate_order_reject(SessionBook& book, const RestingOrder& order, const std::string& cl_ord_id) {
    FIX::Message report = execution_report(order, cl_ord_id, '8', '8');
    report.setField(FIX::FIELD::OrderID, kUnknownOrderId);
    report.setField(FIX::FIELD::OrdRejReason, "6");  // duplicate order
    report.setField(FIX::FIELD::Text, "duplicate ClOrdID " + cl_ord_id);
    set_progress(report, zero_, zero_, zero_);
    send(book, report, counters_.execution_reports_sent);
  }

  // OrderCancelReject (9): `response_to` is '1' for a cancel, '2' for a replace.
  void send_cancel_reject(SessionBook& book, const std::string& cl_ord_id, const std::string& orig_cl_ord_id,
                          char response_to) {
    FIX::Message reject;
    reject.getHeader().setField(FIX::FIELD::MsgType, "9");
    reject.setField(FIX::FIELD::OrderID, kUnknownOrderId);
    reject.setField(FIX::FIELD::ClOrdID, cl_ord_id);
    reject.setField(FIX::FIELD::OrigClOrdID, orig_cl_ord_id);
    reject.setField(FIX::FIELD::OrdStatus, "8");
    reject.setField(FIX::FIELD::CxlRejResponseTo, std::string(1, response_to));
    reject.setField(FIX::FIELD::CxlRejReason, "1");  // unknown order
    reject.setField(FIX::FIELD::Text, "unknown order " + orig_cl_ord_id);
    send(book, reject, counters_.cancel_rejects_sent);
  }

  void send(SessionBook& book, FIX::Message& message, std::atomic<int64_t>& sent_counter) {
    if (book.session->send(message)) {
      sent_counter.fetch_add(1, std::memory_order_relaxed);
    } else {
      counters_.send_failures.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // "O" or "E", the run's token, "-" and a number: unique within the run and across the venue's
  // restarts (a gateway that outlives a venue never sees an ExecID twice).
  std::string next_order_id() {
    return order_id_prefix_ + std::to_string(next_order_number_.fetch_add(1, std::memory_order_relaxed));
  }

  std::string next_exec_id() {
    return exec_id_prefix_ + std::to_string(next_exec_number_.fetch_add(1, std::memory_order_relaxed));
  }

  const EchoMode mode_;
  const std::string quote_size_;
  std::unordered_map<std::string, EchoQuote> quotes_by_symbol_;    // read only after construction
  std::map<FIX::SessionID, std::unique_ptr<SessionBook>> books_;   // complete before start, then read only
  VenueCounters counters_;
  const std::string order_id_prefix_ = "O" + run_token() + "-";
  const std::string exec_id_prefix_ = "E" + run_token() + "-";
  std::atomic<uint64_t> next_order_number_{1};
  std::atomic<uint64_t> next_exec_number_{1};
  const std::string empty_;
  const std::string zero_ = "0";
  const std::string market_fill_price_ = kMarketOrderFillPrice;
  const std::string not_applicable_symbol_ = kNotApplicableSymbol;
};

// -- SETTINGS ---------------------------------------------------------------------------------------

void check_config(const EchoVenueConfig& config) {
  if (config.port <= 0 || config.port > 65535) {
    throw std::invalid_argument("port: expected 1..65535, found " + std::to_string(config.port));
  }
  if (config.sender_comp_ids.empty() || config.sender_comp_ids.size() != config.target_comp_ids.size()) {
    throw std::invalid_argument("sessions: expected at least one (sender, target) pair, found " +
                                std::to_string(config.sender_comp_ids.size()) + " senders and " +
                                std::to_string(config.target_comp_ids.size()) + " targets");
  }
  for (size_t index = 0; index < config.sender_comp_ids.size(); ++index) {
    if (config.sender_comp_ids[index].empty() || config.target_comp_ids[index].empty()) {
      throw std::invalid_argument("sessions: expected non-empty CompIDs, found an empty one in session " +
                                  std::to_string(index));
    }
  }
  if (config.heartbeat_seconds <= 0) {
    throw std::invalid_argument("heartbeat_seconds: expected a positive number, found " +
                                std::to_string(config.heartbeat_seconds));
  }
  if (config.data_dictionary.empty() || ::access(config.data_dictionary.c_str(), R_OK) != 0) {
    throw std::invalid_argument("data_dictionary: expected a readable FIX44.xml, found '" + config.data_dictionary + "'");
  }
  if (config.state_dir.empty()) {
    throw std::invalid_argument("state_dir: expected a directory, found an empty string");
  }
  if (config.duration_seconds < 0) {
    throw std::invalid_argument("duration_seconds: expected 0 (until a signal) or more, found " +
                                std::to_string(config.duration_seconds));
  }
  for (const EchoQuote& quote : config.quotes) {
    if (quote.symbol.empty() || quote.bid_price.empty() || quote.offer_price.empty()) {
      throw std::invalid_argument("quotes: expected a symbol, a bid and an offer, found '" + quote.symbol + "' " +
                                  quote.bid_price + "/" + quote.offer_price);
    }
  }
}

std::string settings_text(const EchoVenueConfig& config) {
  SettingsText settings;
  settings.add_default("ConnectionType", "acceptor");
  settings.add_default("SocketAcceptPort", std::to_string(config.port));
  settings.add_default("SocketReuseAddress", "Y");
  settings.add_default("SocketNodelay", "Y");
  // QuickFIX 1.15.1 copies the listening socket's buffer sizes onto every accepted socket with
  // setsockopt, which turns off the kernel's autotuning: by default that pins the send buffer at
  // 32 KiB, less than the reports of 256 outstanding orders, and the venue's only thread then blocks
  // in send instead of reading. Ask for 1 MiB each way instead.
  settings.add_default("SocketSendBufferSize", std::to_string(kSocketBufferBytes));
  settings.add_default("SocketReceiveBufferSize", std::to_string(kSocketBufferBytes));
  settings.add_default("StartTime", "00:00:00");
  settings.add_default("EndTime", "00:00:00");
  settings.add_default("HeartBtInt", std::to_string(config.heartbeat_seconds));
  settings.add_default("UseDataDictionary", "Y");
  settings.add_default("DataDictionary", config.data_dictionary);
  settings.add_default("ValidateUserDefinedFields", "N");
  settings.add_default("ResetOnLogon", config.reset_on_logon ? "Y" : "N");
  settings.add_default("PersistMessages", config.persist_messages ? "Y" : "N");
  if (config.file_store) {
    settings.add_default("FileStorePath", config.state_dir + "/store");
  }
  for (size_t index = 0; index < config.sender_comp_ids.size(); ++index) {
    settings.begin_session();
    settings.add_session_value("BeginString", "FIX.4.4");
    settings.add_session_value("SenderCompID", config.sender_comp_ids[index]);
    settings.add_session_value("TargetCompID", config.target_comp_ids[index]);
  }
  return settings.text();
}

// Stops the acceptor however the run ends (log out first: stop() busy-waits on logged-on sessions).
class AcceptorShutdown {
 public:
  AcceptorShutdown(FIX::ThreadedSocketAcceptor& acceptor, EchoVenueApplication& application)
      : acceptor_(acceptor), application_(application) {}
  ~AcceptorShutdown() { stop(); }
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    try {
      application_.log_out_all(kLogoutWaitNs);
    } catch (...) {
    }
    acceptor_.stop(true);
  }

 private:
  FIX::ThreadedSocketAcceptor& acceptor_;
  EchoVenueApplication& application_;
  bool stopped_ = false;
};

}  // namespace

// -- RUN --------------------------------------------------------------------------------------------

void run_echo_venue(const EchoVenueConfig& config, EchoVenueReport& report) {
  check_config(config);
  const EchoMode mode = parse_mode(config.mode);
  RunScope run;
  make_directories(config.state_dir);
  report.settings_file = config.state_dir + "/echo-venue.cfg";
  write_file_atomically(report.settings_file, settings_text(config));

  FIX::SessionSettings settings(report.settings_file);
  EchoVenueApplication application(mode, config.quotes, config.quote_size);
  std::unique_ptr<FIX::MessageStoreFactory> stores;
  if (config.file_store) {
    make_directories(config.state_dir + "/store");
    stores.reset(new FIX::FileStoreFactory(settings));
  } else {
    stores.reset(new FIX::MemoryStoreFactory());
  }
  FIX::ThreadedSocketAcceptor acceptor(application, *stores, settings);
  application.attach(acceptor);
  {
    SignalsBlockedInThisThread blocked;  // QuickFIX's threads inherit the mask
    acceptor.start();
  }
  AcceptorShutdown shutdown(acceptor, application);
  const int64_t started_ns = monotonic_ns();
  if (!config.ready_file.empty()) {
    write_file_atomically(config.ready_file, "{\"port\": " + std::to_string(config.port) +
                                                 ", \"pid\": " + std::to_string(::getpid()) + "}\n");
  }

  const int64_t duration_ns = static_cast<int64_t>(config.duration_seconds * 1e9);
  report.stopped_by = "signal";
  while (!run.signal_received()) {
    if (duration_ns > 0) {
      const int64_t remaining_ns = started_ns + duration_ns - monotonic_ns();
      if (remaining_ns <= 0) {
        report.stopped_by = "duration";
        break;
      }
      run.wait_ns(std::min(remaining_ns, kIdleWaitNs));
    } else {
      run.wait_ns(kIdleWaitNs);
    }
  }
  report.elapsed_seconds = (monotonic_ns() - started_ns) / 1e9;
  report.signal_number = run.signal_number();
  shutdown.stop();

  const VenueCounters& counters = application.counters();
  report.logons = counters.logons.load();
  report.logouts = counters.logouts.load();
  report.orders_received = counters.orders_received.load();
  report.cancels_received = counters.cancels_received.load();
  report.replaces_received = counters.replaces_received.load();
  report.status_requests_received = counters.status_requests_received.load();
  report.mass_status_requests_received = counters.mass_status_requests_received.load();
  report.market_data_requests_received = counters.market_data_requests_received.load();
  report.execution_reports_sent = counters.execution_reports_sent.load();
  report.cancel_rejects_sent = counters.cancel_rejects_sent.load();
  report.market_data_snapshots_sent = counters.market_data_snapshots_sent.load();
  report.send_failures = counters.send_failures.load();
  report.unsupported_messages = counters.unsupported_messages.load();
  report.callback_errors = counters.callback_errors.load();
  report.resting_orders = application.resting_orders();
}

}  // namespace bench
}  // namespace fixgate
