#include "load_client.h"

#include <errno.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <quickfix/Application.h>
#include <quickfix/FileStore.h>
#include <quickfix/MessageStore.h>
#include <quickfix/Session.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/ThreadedSocketInitiator.h>

#include "peer_runtime.h"

namespace fixgate {
namespace bench {
namespace {

// -- VALUES -----------------------------------------------------------------------------------------

enum class LoadMode { latency, throughput, rate };

const size_t kKeptRejectTexts = 5;
const int64_t kNoDeadline = std::numeric_limits<int64_t>::max();
const int64_t kLogoutWaitNs = 3'000'000'000;
const int64_t kLogonPollNs = 100'000'000;

LoadMode parse_mode(const std::string& mode) {
  if (mode == "latency") return LoadMode::latency;
  if (mode == "throughput") return LoadMode::throughput;
  if (mode == "rate") return LoadMode::rate;
  throw std::invalid_argument("mode: expected one of latency, throughput, rate; found '" + mode + "'");
}

bool parse_complete_on_first(const std::string& complete_on) {
  if (complete_on == "first") return true;
  if (complete_on == "final") return false;
  throw std::invalid_argument("complete_on: expected first or final, found '" + complete_on + "'");
}

// OrdStatus values after which an order is done: filled, done for day, canceled, rejected, expired.
bool is_final_status(char ord_status) {
  return ord_status == '2' || ord_status == '3' || ord_status == '4' || ord_status == '8' || ord_status == 'C';
}

int64_t seconds_to_ns(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

// "L", the run token and "-": unique per run for weeks, and short enough that ClOrdIDs of up to seven
// digits stay in std::string's inline buffer.
std::string default_cl_ord_id_prefix() { return "L" + run_token() + "-"; }

// -- ORDER LEDGER -----------------------------------------------------------------------------------

// What the run knows of one order; zero means "not yet".
struct OrderSlot {
  std::atomic<int64_t> sent_ns{0};          // written by the sending thread just before Session::send
  std::atomic<int64_t> first_report_ns{0};  // written by the QuickFIX reader thread
  std::atomic<int64_t> completed_ns{0};     // written by the QuickFIX reader thread
};

// Slots by order index, in chunks allocated as sending reaches them, so a run limited only by time
// needs no size up front and a slot never moves while the reader thread uses it.
class OrderLedger {
 public:
  static const uint64_t kChunkBits = 16;
  static const uint64_t kChunkSize = uint64_t{1} << kChunkBits;
  static const uint64_t kMaxChunks = uint64_t{1} << 14;
  static const uint64_t kCapacity = kChunkSize * kMaxChunks;

  OrderLedger() : chunks_(new std::atomic<OrderSlot*>[kMaxChunks]) {
    for (uint64_t index = 0; index < kMaxChunks; ++index) {
      chunks_[index].store(nullptr, std::memory_order_relaxed);
    }
  }

  ~OrderLedger() {
    for (uint64_t index = 0; index < kMaxChunks; ++index) {
      delete[] chunks_[index].load(std::memory_order_relaxed);
    }
  }

  OrderLedger(const OrderLedger&) = delete;
  OrderLedger& operator=(const OrderLedger&) = delete;

  // The slot of `index` for a sender, allocating its chunk when needed; nullptr past the capacity.
  OrderSlot* slot_for_send(uint64_t index) {
    if (index >= kCapacity) {
      return nullptr;
    }
    const uint64_t chunk = index >> kChunkBits;
    OrderSlot* slots = chunks_[chunk].load(std::memory_order_acquire);
    if (slots == nullptr) {
      std::lock_guard<std::mutex> lock(grow_mutex_);  // two senders may reach a new chunk together
      slots = chunks_[chunk].load(std::memory_order_relaxed);
      if (slots == nullptr) {
        slots = new OrderSlot[kChunkSize];
        // Release: the zeroed slots are visible to whoever loads this pointer with acquire.
        chunks_[chunk].store(slots, std::memory_order_release);
      }
    }
    return &slots[index & (kChunkSize - 1)];
  }

  // The slot of `index`, or nullptr when no order that far was ever sent.
  OrderSlot* find(uint64_t index) const {
    if (index >= kCapacity) {
      return nullptr;
    }
    // Acquire: pairs with the release in slot_for_send.
    OrderSlot* slots = chunks_[index >> kChunkBits].load(std::memory_order_acquire);
    return slots == nullptr ? nullptr : &slots[index & (kChunkSize - 1)];
  }

 private:
  std::unique_ptr<std::atomic<OrderSlot*>[]> chunks_;
  std::mutex grow_mutex_;
};

// -- ORDER WRITER -----------------------------------------------------------------------------------

// One reusable NewOrderSingle: only ClOrdID and TransactTime change from one order to the next
// (Session::send rewrites the header). Used by one thread at a time.
class OrderWriter {
 public:
  OrderWriter(const LoadClientConfig& config, const std::string& prefix) : cl_ord_id_(prefix), prefix_size_(prefix.size()) {
    message_.getHeader().setField(FIX::FIELD::MsgType, "D");
    message_.setField(FIX::FIELD::Symbol, config.symbol);
    message_.setField(FIX::FIELD::Side, config.side);
    message_.setField(FIX::FIELD::OrderQty, config.quantity);
    message_.setField(FIX::FIELD::OrdType, "2");  // limit
    message_.setField(FIX::FIELD::Price, config.price);
    message_.setField(FIX::FIELD::TimeInForce, config.time_in_force);
  }

  FIX::Message& prepare(uint64_t index) {
    cl_ord_id_.resize(prefix_size_);
    char digits[20];
    int length = 0;
    do {
      digits[length++] = static_cast<char>('0' + index % 10);
      index /= 10;
    } while (index != 0);
    while (length > 0) {
      cl_ord_id_.push_back(digits[--length]);
    }
    message_.setField(FIX::FIELD::ClOrdID, cl_ord_id_);
    char transact_time[25];
    format_utc_timestamp_now(transact_time);
    message_.setField(FIX::FIELD::TransactTime, transact_time);
    return message_;
  }

 private:
  FIX::Message message_;
  std::string cl_ord_id_;
  const size_t prefix_size_;
};

// -- THE APPLICATION --------------------------------------------------------------------------------

class LoadClientApplication : public FIX::Application {
 public:
  LoadClientApplication(const LoadClientConfig& config, const std::string& prefix, RunScope& run)
      : config_(config),
        run_(run),
        prefix_(prefix),
        complete_on_first_(parse_complete_on_first(config.complete_on)),
        main_writer_(config, prefix),
        reader_writer_(config, prefix) {}

  // Find the session's Session object once, before the initiator starts.
  void attach(FIX::Initiator& initiator) {
    for (const FIX::SessionID& session_id : initiator.getSessions()) {
      session_ = initiator.getSession(session_id);
    }
    if (session_ == nullptr) {
      throw std::runtime_error("load client: QuickFIX created no session");
    }
  }

  bool logged_on() const { return logged_on_.load(std::memory_order_acquire); }

  void log_out(int64_t timeout_ns) {
    if (session_ != nullptr && session_->isLoggedOn()) {
      session_->logout("load client done");
    }
    const int64_t deadline = monotonic_ns() + timeout_ns;
    while (monotonic_ns() < deadline && session_ != nullptr && session_->isLoggedOn()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // -- phases (called by the run's thread)

  // Let orders [first_index, end_index) be sent until `deadline_ns`; `from_reports`: each completion
  // sends the next order. Called only while no order is outstanding.
  void open_sending(uint64_t first_index, uint64_t end_index, int64_t deadline_ns, bool from_reports) {
    next_index_.store(first_index, std::memory_order_relaxed);
    send_end_index_.store(end_index, std::memory_order_relaxed);
    send_deadline_ns_.store(deadline_ns, std::memory_order_relaxed);
    sends_from_reports_.store(from_reports, std::memory_order_relaxed);
    // Release: the phase's limits are visible to a sender that sees sending open.
    sending_open_.store(true, std::memory_order_release);
  }

  void close_sending() { sending_open_.store(false, std::memory_order_release); }

  bool sending_open() const { return sending_open_.load(std::memory_order_acquire); }

  // Send the next order of the phase from the main thread; false once the phase has no more.
  bool send_next_from_main() { return send_next(main_writer_); }

  int64_t orders_sent() const { return orders_sent_.load(std::memory_order_acquire); }
  int64_t orders_completed() const { return orders_completed_.load(std::memory_order_acquire); }
  int64_t orders_answered() const { return orders_answered_.load(std::memory_order_acquire); }
  int64_t reports_received() const { return reports_received_.load(std::memory_order_acquire); }
  uint64_t next_index() const { return next_index_.load(std::memory_order_acquire); }
  const OrderLedger& ledger() const { return ledger_; }

  void fill_counts(LoadClientReport& report) {
    report.send_failures = send_failures_.load();
    report.execution_reports_received = reports_received_.load();
    report.rejects = rejects_.load();
    report.cancel_rejects_received = cancel_rejects_.load();
    report.business_rejects_received = business_rejects_.load();
    report.unmatched_reports = unmatched_reports_.load();
    report.callback_errors = callback_errors_.load();
    report.logons = logons_.load();
    report.logouts = logouts_.load();
    std::lock_guard<std::mutex> lock(reject_texts_mutex_);
    report.reject_texts = reject_texts_;
  }

  // -- QuickFIX callbacks

  void onCreate(const FIX::SessionID&) override {}

  void onLogon(const FIX::SessionID&) override {
    logons_.fetch_add(1, std::memory_order_relaxed);
    logged_on_.store(true, std::memory_order_release);
    run_.wake();
  }

  void onLogout(const FIX::SessionID&) override {
    logouts_.fetch_add(1, std::memory_order_relaxed);
    logged_on_.store(false, std::memory_order_release);
    run_.wake();
  }

  void toAdmin(FIX::Message& message, const FIX::SessionID&) override {
    guard(callback_errors_, [&] {
      if (message.getHeader().getField(FIX::FIELD::MsgType) == "A") {
        if (!config_.username.empty()) message.setField(FIX::FIELD::Username, config_.username);
        if (!config_.password.empty()) message.setField(FIX::FIELD::Password, config_.password);
      }
    });
  }

  void toApp(FIX::Message&, const FIX::SessionID&) throw(FIX::DoNotSend) override {}

  void fromAdmin(const FIX::Message&, const FIX::SessionID&) throw(FIX::FieldNotFound, FIX::IncorrectDataFormat,
                                                                   FIX::IncorrectTagValue,
                                                                   FIX::RejectLogon) override {}

  void fromApp(const FIX::Message& message, const FIX::SessionID&) throw(
      FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::UnsupportedMessageType) override {
    const int64_t arrived_ns = monotonic_ns();  // first, before any field is read
    guard_from_app(callback_errors_, [&] {
      const std::string& message_type = message.getHeader().getField(FIX::FIELD::MsgType);
      if (message_type == "8") {
        on_execution_report(message, arrived_ns);
      } else if (message_type == "9") {
        cancel_rejects_.fetch_add(1, std::memory_order_relaxed);
      } else if (message_type == "j") {
        business_rejects_.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

 private:
  bool send_next(OrderWriter& writer) {
    // Acquire: pairs with open_sending's release, so the limits read below are the phase's.
    if (!sending_open_.load(std::memory_order_acquire)) {
      return false;
    }
    const uint64_t index = next_index_.fetch_add(1, std::memory_order_relaxed);
    if (index >= send_end_index_.load(std::memory_order_relaxed)) {
      close_sending();
      return false;
    }
    const int64_t deadline_ns = send_deadline_ns_.load(std::memory_order_relaxed);
    if (deadline_ns != kNoDeadline && monotonic_ns() >= deadline_ns) {
      close_sending();
      return false;
    }
    OrderSlot* slot = ledger_.slot_for_send(index);
    if (slot == nullptr) {
      close_sending();
      return false;
    }
    FIX::Message& order = writer.prepare(index);
    orders_sent_.fetch_add(1, std::memory_order_release);
    slot->sent_ns.store(monotonic_ns(), std::memory_order_relaxed);
    if (!session_->send(order)) {
      send_failures_.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
  }

  // The order index in a ClOrdID of this run, or false for anyone else's ClOrdID.
  bool parse_index(const std::string& cl_ord_id, uint64_t& index) const {
    if (cl_ord_id.size() <= prefix_.size() || cl_ord_id.size() > prefix_.size() + 19 ||
        cl_ord_id.compare(0, prefix_.size(), prefix_) != 0) {
      return false;
    }
    uint64_t value = 0;
    for (size_t position = prefix_.size(); position < cl_ord_id.size(); ++position) {
      const char digit = cl_ord_id[position];
      if (digit < '0' || digit > '9') {
        return false;
      }
      value = value * 10 + static_cast<uint64_t>(digit - '0');
    }
    index = value;
    return true;
  }

  // Runs on the session's reader thread (one at a time), the only writer of the slots' report times.
  void on_execution_report(const FIX::Message& message, int64_t arrived_ns) {
    reports_received_.fetch_add(1, std::memory_order_release);
    uint64_t index = 0;
    OrderSlot* slot = nullptr;
    if (message.isSetField(FIX::FIELD::ClOrdID) && parse_index(message.getField(FIX::FIELD::ClOrdID), index)) {
      slot = ledger_.find(index);
    }
    if (slot == nullptr || slot->sent_ns.load(std::memory_order_relaxed) == 0) {
      unmatched_reports_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const std::string& ord_status = message.getField(FIX::FIELD::OrdStatus);
    const char status = ord_status.empty() ? ' ' : ord_status[0];
    if (status == '8') {
      rejects_.fetch_add(1, std::memory_order_relaxed);
      keep_reject_text(message);
    }
    const bool first = slot->first_report_ns.load(std::memory_order_relaxed) == 0;
    if (first) {
      slot->first_report_ns.store(arrived_ns, std::memory_order_relaxed);
      orders_answered_.fetch_add(1, std::memory_order_release);
    }
    const bool completes = (complete_on_first_ && first) || is_final_status(status);
    if (!completes || slot->completed_ns.load(std::memory_order_relaxed) != 0) {
      return;
    }
    slot->completed_ns.store(arrived_ns, std::memory_order_relaxed);
    // The next order goes out before the completion is counted: when the run's thread sees the
    // phase's last completion, no sender is left inside send_next.
    if (sends_from_reports_.load(std::memory_order_relaxed)) {
      send_next(reader_writer_);
    }
    const int64_t completed = orders_completed_.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (!sending_open() && completed >= orders_sent()) {
      run_.wake();
    }
  }

  void keep_reject_text(const FIX::Message& message) {
    std::lock_guard<std::mutex> lock(reject_texts_mutex_);
    if (reject_texts_.size() < kKeptRejectTexts) {
      reject_texts_.push_back(message.isSetField(FIX::FIELD::Text) ? message.getField(FIX::FIELD::Text) : "");
    }
  }

  const LoadClientConfig& config_;
  RunScope& run_;
  const std::string prefix_;
  const bool complete_on_first_;
  FIX::Session* session_ = nullptr;  // written once before the initiator starts, then read only
  OrderLedger ledger_;
  OrderWriter main_writer_;          // used by the run's thread only
  OrderWriter reader_writer_;        // used by the QuickFIX reader thread only

  // The phase: written by the run's thread while no order is outstanding (and by close_sending from
  // either sender), read by both senders.
  std::atomic<bool> sending_open_{false};
  std::atomic<bool> sends_from_reports_{false};
  std::atomic<uint64_t> next_index_{0};
  std::atomic<uint64_t> send_end_index_{0};
  std::atomic<int64_t> send_deadline_ns_{kNoDeadline};

  // Counters: each written by the thread named, read by the run's thread.
  std::atomic<int64_t> orders_sent_{0};             // senders
  std::atomic<int64_t> send_failures_{0};           // senders
  std::atomic<int64_t> reports_received_{0};        // reader
  std::atomic<int64_t> orders_answered_{0};         // reader
  std::atomic<int64_t> orders_completed_{0};        // reader
  std::atomic<int64_t> rejects_{0};                 // reader
  std::atomic<int64_t> cancel_rejects_{0};          // reader
  std::atomic<int64_t> business_rejects_{0};        // reader
  std::atomic<int64_t> unmatched_reports_{0};       // reader
  std::atomic<int64_t> callback_errors_{0};         // QuickFIX threads
  std::atomic<int64_t> logons_{0};                  // QuickFIX threads
  std::atomic<int64_t> logouts_{0};                 // QuickFIX threads
  std::atomic<bool> logged_on_{false};              // QuickFIX threads
  std::mutex reject_texts_mutex_;
  std::vector<std::string> reject_texts_;           // reader, under the mutex
};

// -- SETTINGS ---------------------------------------------------------------------------------------

void check_config(const LoadClientConfig& config, LoadMode mode) {
  require_loopback_host(config.host);
  if (config.port <= 0 || config.port > 65535) {
    throw std::invalid_argument("port: expected 1..65535, found " + std::to_string(config.port));
  }
  if (config.sender_comp_id.empty() || config.target_comp_id.empty()) {
    throw std::invalid_argument("sender, target: expected both CompIDs, found '" + config.sender_comp_id + "', '" +
                                config.target_comp_id + "'");
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
  if (config.orders < 0 || config.warmup_orders < 0) {
    throw std::invalid_argument("orders, warmup_orders: expected 0 or more, found " + std::to_string(config.orders) +
                                ", " + std::to_string(config.warmup_orders));
  }
  if (config.duration_seconds < 0) {
    throw std::invalid_argument("duration_seconds: expected 0 (no limit) or more, found " +
                                std::to_string(config.duration_seconds));
  }
  if (config.orders == 0 && config.duration_seconds == 0) {
    throw std::invalid_argument("orders, duration_seconds: expected a number of orders or a duration, found neither");
  }
  if (static_cast<uint64_t>(config.orders) + static_cast<uint64_t>(config.warmup_orders) > OrderLedger::kCapacity) {
    throw std::invalid_argument("orders: expected at most " + std::to_string(OrderLedger::kCapacity) +
                                " with the warm-up, found " + std::to_string(config.orders + config.warmup_orders));
  }
  if (mode == LoadMode::throughput && config.outstanding <= 0) {
    throw std::invalid_argument("outstanding: expected 1 or more, found " + std::to_string(config.outstanding));
  }
  if (mode == LoadMode::rate && !(config.rate_per_second > 0)) {
    throw std::invalid_argument("rate_per_second: expected a positive rate in rate mode, found " +
                                std::to_string(config.rate_per_second));
  }
  if (config.symbol.empty() || config.side.size() != 1 || config.quantity.empty() || config.price.empty() ||
      config.time_in_force.size() != 1) {
    throw std::invalid_argument("symbol, side, quantity, price, time_in_force: expected a symbol, one-character side "
                                "and time in force, a quantity and a price, found '" + config.symbol + "', '" +
                                config.side + "', '" + config.quantity + "', '" + config.price + "', '" +
                                config.time_in_force + "'");
  }
  if (!(config.answer_timeout_seconds > 0) || !(config.logon_timeout_seconds > 0)) {
    throw std::invalid_argument("answer_timeout_seconds, logon_timeout_seconds: expected positive numbers, found " +
                                std::to_string(config.answer_timeout_seconds) + ", " +
                                std::to_string(config.logon_timeout_seconds));
  }
}

std::string settings_text(const LoadClientConfig& config) {
  SettingsText settings;
  settings.add_default("ConnectionType", "initiator");
  settings.add_default("SocketConnectHost", config.host);
  settings.add_default("SocketConnectPort", std::to_string(config.port));
  settings.add_default("SocketNodelay", "Y");
  settings.add_default("ReconnectInterval", "1");
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
  settings.begin_session();
  settings.add_session_value("BeginString", "FIX.4.4");
  settings.add_session_value("SenderCompID", config.sender_comp_id);
  settings.add_session_value("TargetCompID", config.target_comp_id);
  return settings.text();
}

// Stops the initiator however the run ends (log out first, then stop(true)).
class InitiatorShutdown {
 public:
  InitiatorShutdown(FIX::ThreadedSocketInitiator& initiator, LoadClientApplication& application)
      : initiator_(initiator), application_(application) {}
  ~InitiatorShutdown() { stop(); }
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    try {
      application_.close_sending();
      application_.log_out(kLogoutWaitNs);
    } catch (...) {
    }
    initiator_.stop(true);
  }

 private:
  FIX::ThreadedSocketInitiator& initiator_;
  LoadClientApplication& application_;
  bool stopped_ = false;
};

// Sets the calling thread's timer slack to 1 ns while it lives, so a paced sleep wakes on time
// instead of up to the default 50 µs late.
class PreciseTimerSlack {
 public:
  PreciseTimerSlack() : previous_(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)) { prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0); }
  ~PreciseTimerSlack() {
    if (previous_ > 0) prctl(PR_SET_TIMERSLACK, previous_, 0, 0, 0);
  }

 private:
  const int previous_;
};

// -- THE RUN ----------------------------------------------------------------------------------------

class LoadRun {
 public:
  LoadRun(const LoadClientConfig& config, LoadMode mode, LoadClientApplication& client, RunScope& run,
          LoadClientReport& report)
      : config_(config), mode_(mode), client_(client), run_(run), report_(report),
        answer_timeout_ns_(seconds_to_ns(config.answer_timeout_seconds)) {}

  void wait_for_logon() {
    const int64_t deadline = monotonic_ns() + seconds_to_ns(config_.logon_timeout_seconds);
    while (!client_.logged_on() && !run_.signal_received()) {
      const int64_t remaining = deadline - monotonic_ns();
      if (remaining <= 0) {
        throw std::runtime_error("load client: no logon from " + config_.target_comp_id + " at " + config_.host + ":" +
                                 std::to_string(config_.port) + " as " + config_.sender_comp_id + " within " +
                                 std::to_string(config_.logon_timeout_seconds) + " s");
      }
      run_.wait_ns(std::min(remaining, kLogonPollNs));
    }
  }

  // Warm-up, then the measured phase, then the wait for the last answers; sets report.stopped_by.
  void run_phases() {
    report_.stopped_by = "done";
    const uint64_t warmup = static_cast<uint64_t>(config_.warmup_orders);
    if (warmup > 0) {
      client_.open_sending(0, warmup, kNoDeadline, true);
      client_.send_next_from_main();
      wait_while_sending(kNoDeadline);
      if (report_.stopped_by != "done") {
        return;
      }
    }
    const uint64_t measured_end = config_.orders > 0 ? warmup + static_cast<uint64_t>(config_.orders)
                                                     : OrderLedger::kCapacity;
    const int64_t deadline = config_.duration_seconds > 0 ? monotonic_ns() + seconds_to_ns(config_.duration_seconds)
                                                          : kNoDeadline;
    if (mode_ == LoadMode::rate) {
      client_.open_sending(warmup, measured_end, deadline, false);
      send_at_rate(deadline);
      client_.close_sending();
    } else {
      client_.open_sending(warmup, measured_end, deadline, true);
      const int64_t window = mode_ == LoadMode::latency ? 1 : config_.outstanding;
      for (int64_t sent = 0; sent < window && client_.send_next_from_main(); ++sent) {
      }
      wait_while_sending(deadline);
    }
    if (report_.stopped_by == "done" && !interrupted()) {
      drain();
    }
  }

 private:
  // True (and stopped_by says why) once a signal arrived or the session dropped.
  bool interrupted() {
    if (run_.signal_received()) {
      report_.stopped_by = "signal";
      return true;
    }
    if (!client_.logged_on()) {
      report_.stopped_by = "logged_out";
      return true;
    }
    return false;
  }

  // Wait while orders flow from reports: until sending is closed and every sent order completed,
  // the deadline passes, a signal arrives, the session drops, or no report comes for the answer timeout.
  void wait_while_sending(int64_t deadline) {
    int64_t reports_seen = client_.reports_received();
    int64_t progress_ns = monotonic_ns();
    while (true) {
      if (!client_.sending_open() && client_.orders_completed() >= client_.orders_sent()) {
        return;
      }
      if (interrupted()) {
        client_.close_sending();
        return;
      }
      const int64_t now = monotonic_ns();
      if (deadline != kNoDeadline && now >= deadline && client_.sending_open()) {
        client_.close_sending();
        return;  // the drain waits for what is still outstanding
      }
      const int64_t reports = client_.reports_received();
      if (reports != reports_seen) {
        reports_seen = reports;
        progress_ns = now;
      } else if (now - progress_ns >= answer_timeout_ns_) {
        client_.close_sending();
        report_.stopped_by = "stalled";
        return;
      }
      int64_t wait_ns = progress_ns + answer_timeout_ns_ - now;
      if (deadline != kNoDeadline) {
        wait_ns = std::min(wait_ns, deadline - now);
      }
      run_.wait_ns(std::max<int64_t>(wait_ns, 1'000'000));
    }
  }

  // Send one order every 1/rate seconds on an absolute schedule (a late send does not move the next).
  void send_at_rate(int64_t deadline) {
    PreciseTimerSlack precise;
    const double period_ns = 1e9 / config_.rate_per_second;
    const int64_t started = monotonic_ns();
    for (uint64_t count = 0;; ++count) {
      const int64_t due = started + static_cast<int64_t>(static_cast<double>(count) * period_ns);
      if (deadline != kNoDeadline && due >= deadline) {
        return;
      }
      const bool slept = sleep_until(due);
      if (interrupted() || !slept) {
        return;
      }
      if (!client_.send_next_from_main()) {
        return;
      }
    }
  }

  // Sleep until `due_ns` on CLOCK_MONOTONIC; false when a signal cut the sleep short.
  bool sleep_until(int64_t due_ns) {
    struct timespec due = {static_cast<time_t>(due_ns / 1000000000), static_cast<long>(due_ns % 1000000000)};
    while (true) {
      const int result = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, nullptr);
      if (result == 0) return true;
      if (result != EINTR || run_.signal_received()) return result != EINTR;
    }
  }

  // After sending ends: wait up to the answer timeout for every sent order to complete (a signal or
  // a dropped session ends the wait: what is still outstanding then counts as lost or incomplete).
  void drain() {
    const int64_t deadline = monotonic_ns() + answer_timeout_ns_;
    while (client_.orders_completed() < client_.orders_sent() && !interrupted()) {
      const int64_t remaining = deadline - monotonic_ns();
      if (remaining <= 0) {
        return;
      }
      run_.wait_ns(remaining);
    }
  }

  const LoadClientConfig& config_;
  const LoadMode mode_;
  LoadClientApplication& client_;
  RunScope& run_;
  LoadClientReport& report_;
  const int64_t answer_timeout_ns_;
};

// Fill the per-order part of `report` from the ledger (after QuickFIX's threads have stopped).
void summarize_orders(const LoadClientApplication& client, uint64_t warmup, LoadClientReport& report) {
  const uint64_t end = std::min<uint64_t>(client.next_index(), OrderLedger::kCapacity);
  int64_t first_send = kNoDeadline, last_send = 0, last_answer = 0;
  for (uint64_t index = 0; index < end; ++index) {
    const OrderSlot* slot = client.ledger().find(index);
    if (slot == nullptr) {
      index |= OrderLedger::kChunkSize - 1;  // a whole chunk never reached
      continue;
    }
    const int64_t sent = slot->sent_ns.load();
    if (sent == 0) {
      continue;
    }
    const int64_t first_report = slot->first_report_ns.load();
    const int64_t completed = slot->completed_ns.load();
    ++report.orders_sent;
    report.orders_answered += first_report != 0;
    report.orders_completed += completed != 0;
    report.orders_lost += first_report == 0;
    report.orders_incomplete += first_report != 0 && completed == 0;
    if (index < warmup) {
      ++report.warmup_orders_sent;
      continue;
    }
    ++report.measured_orders_sent;
    report.latency_ns.push_back(first_report != 0 ? first_report - sent : -1);
    report.completed.push_back(completed != 0 ? 1 : 0);
    first_send = std::min(first_send, sent);
    last_send = std::max(last_send, sent);
    last_answer = std::max(last_answer, std::max(first_report, completed));
  }
  if (report.measured_orders_sent == 0) {
    return;
  }
  int64_t measured_completed = 0;
  for (uint8_t done : report.completed) measured_completed += done;
  report.send_seconds = (last_send - first_send) / 1e9;
  report.elapsed_seconds = last_answer > first_send ? (last_answer - first_send) / 1e9 : 0.0;
  report.orders_per_second = report.elapsed_seconds > 0 ? measured_completed / report.elapsed_seconds : 0.0;
  report.send_rate_per_second =
      report.send_seconds > 0 ? (report.measured_orders_sent - 1) / report.send_seconds : 0.0;
}

}  // namespace

void run_load_client(const LoadClientConfig& config, LoadClientReport& report) {
  const LoadMode mode = parse_mode(config.mode);
  check_config(config, mode);
  parse_complete_on_first(config.complete_on);
  RunScope run;
  make_directories(config.state_dir);
  report.cl_ord_id_prefix = config.cl_ord_id_prefix.empty() ? default_cl_ord_id_prefix() : config.cl_ord_id_prefix;
  report.settings_file = config.state_dir + "/load-client.cfg";
  write_file_atomically(report.settings_file, settings_text(config));

  FIX::SessionSettings settings(report.settings_file);
  LoadClientApplication client(config, report.cl_ord_id_prefix, run);
  std::unique_ptr<FIX::MessageStoreFactory> stores;
  if (config.file_store) {
    make_directories(config.state_dir + "/store");
    stores.reset(new FIX::FileStoreFactory(settings));
  } else {
    stores.reset(new FIX::MemoryStoreFactory());
  }
  FIX::ThreadedSocketInitiator initiator(client, *stores, settings);
  client.attach(initiator);
  {
    SignalsBlockedInThisThread blocked;  // QuickFIX's threads inherit the mask
    initiator.start();
  }
  InitiatorShutdown shutdown(initiator, client);
  LoadRun load(config, mode, client, run, report);
  load.wait_for_logon();
  if (run.signal_received()) {
    report.stopped_by = "signal";
  } else {
    load.run_phases();
  }
  report.signal_number = run.signal_number();
  shutdown.stop();  // QuickFIX's threads are gone after this: the ledger is read alone
  client.fill_counts(report);
  summarize_orders(client, static_cast<uint64_t>(config.warmup_orders), report);
}

}  // namespace bench
}  // namespace fixgate
