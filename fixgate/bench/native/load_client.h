// The load client: a FIX 4.4 initiator over QuickFIX C++ that sends NewOrderSingle limit orders and
// times each one from just before Session::send to the arrival, in fromApp, of its first
// ExecutionReport (CLOCK_MONOTONIC nanoseconds).
//
// Every run starts with `warmup_orders` sent one at a time (not measured), then the measured phase:
// - latency:    one order outstanding at a time;
// - throughput: `outstanding` orders in flight, a new one sent as each completes;
// - rate:       `rate_per_second` orders a second on a fixed schedule, whatever the answers.
// An order completes on its first report (`complete_on` "first", for a venue that only acknowledges)
// or on a report with OrdStatus filled, canceled, rejected, expired or done for day ("final"). In
// latency and throughput modes the next order is sent from the QuickFIX thread that received the
// completing report, so no thread hand-off sits between one order and the next.
#ifndef FIXGATE_BENCH_LOAD_CLIENT_H
#define FIXGATE_BENCH_LOAD_CLIENT_H

#include <cstdint>
#include <string>
#include <vector>

namespace fixgate {
namespace bench {

// Everything a load-client run needs; `run_load_client` checks every field and names the one that is
// wrong.
struct LoadClientConfig {
  // -- the session
  std::string host = "127.0.0.1";     // loopback only
  int port = 0;
  std::string sender_comp_id;
  std::string target_comp_id;
  std::string username;               // Username(553) on Logon; empty sends none
  std::string password;               // Password(554) on Logon; empty sends none
  int heartbeat_seconds = 30;
  std::string data_dictionary;        // FIX44.xml
  std::string state_dir;              // the settings file, and the file store when chosen
  bool file_store = false;            // FileStore under state_dir/store; MemoryStore otherwise
  bool reset_on_logon = true;
  bool persist_messages = false;      // keep sent messages for resends (memory grows with every order)
  // -- the load
  std::string mode = "latency";       // "latency", "throughput" or "rate"
  int64_t orders = 0;                 // measured orders; 0 for no count limit (then a duration is needed)
  int64_t warmup_orders = 0;
  int64_t outstanding = 64;           // orders in flight in throughput mode
  double duration_seconds = 0.0;      // length of the measured phase; 0 for no time limit
  double rate_per_second = 0.0;       // orders a second in rate mode
  std::string complete_on = "final";  // "first" or "final"
  // -- the orders
  std::string symbol = "AAPL";
  std::string side = "1";
  std::string quantity = "1";
  std::string price = "187.00";
  std::string time_in_force = "3";
  std::string cl_ord_id_prefix;       // empty: "L", the run token (see run_token), "-"
  // -- patience
  double answer_timeout_seconds = 5.0;  // after sending ends (or without any report): orders still unanswered are lost
  double logon_timeout_seconds = 10.0;
};

// What a load-client run did. Counts cover every order sent, warm-up included; the per-order arrays
// and the rates cover the measured orders only.
struct LoadClientReport {
  int64_t orders_sent = 0;
  int64_t warmup_orders_sent = 0;
  int64_t measured_orders_sent = 0;
  int64_t send_failures = 0;              // Session::send returned false (not logged on)
  int64_t execution_reports_received = 0;
  int64_t orders_answered = 0;            // orders with at least one ExecutionReport
  int64_t orders_completed = 0;
  int64_t orders_lost = 0;                // sent, and no report within the answer timeout
  int64_t orders_incomplete = 0;          // answered, but not completed within the answer timeout
  int64_t rejects = 0;                    // ExecutionReports with OrdStatus=8
  std::vector<std::string> reject_texts;  // Text(58) of the first few rejects
  int64_t cancel_rejects_received = 0;
  int64_t business_rejects_received = 0;
  int64_t unmatched_reports = 0;          // ExecutionReports whose ClOrdID this run never sent
  int64_t callback_errors = 0;            // exceptions caught in callbacks (never let out)
  int64_t logons = 0;
  int64_t logouts = 0;
  double elapsed_seconds = 0.0;           // first measured send to the last measured completion (or answer)
  double send_seconds = 0.0;              // first to last measured send
  double orders_per_second = 0.0;         // measured orders completed / elapsed_seconds
  double send_rate_per_second = 0.0;      // measured sends / send_seconds (intervals between sends)
  std::string stopped_by;                 // "done" (count or duration reached), "signal", "logged_out",
                                          // or "stalled" (no report for the answer timeout while sending)
  int signal_number = 0;
  std::string cl_ord_id_prefix;
  std::string settings_file;
  std::vector<int64_t> latency_ns;        // per measured order, in send order: first report - send; -1 for none
  std::vector<uint8_t> completed;         // per measured order, in send order: 1 when it completed
};

// Log on, run the warm-up and the measured phase, wait for the last answers, log out, stop QuickFIX
// and fill `report`. Ends early on SIGINT/SIGTERM (stopped_by "signal", counts still filled). Meant to
// be called without the GIL.
//
// Throws std::invalid_argument for a wrong config field (the message names it), std::runtime_error
// when no logon comes within the logon timeout, another peer runs in this process or a file cannot
// be written, and FIX::ConfigError or FIX::RuntimeError when QuickFIX refuses its settings.
void run_load_client(const LoadClientConfig& config, LoadClientReport& report);

}  // namespace bench
}  // namespace fixgate

#endif  // FIXGATE_BENCH_LOAD_CLIENT_H
