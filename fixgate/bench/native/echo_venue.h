// The echo venue: a FIX 4.4 acceptor over QuickFIX C++ that answers orders at once, without a book.
//
// NewOrderSingle (D) is acknowledged (ExecType=0, OrdStatus=0); then, by mode, the order rests
// (`ack`), is filled whole at its price (`fill`), or is cancelled when it is IOC or FOK and rests
// otherwise (`ioc`). Resting orders can be cancelled (F), replaced (G), asked about (H, AF); a
// MarketDataRequest (V) gets one snapshot (W) per symbol with a bid and an offer. Orders that are
// done (filled or cancelled) are forgotten: a later request for one is answered as for an unknown
// order.
//
// QuickFIX 1.15.1 has no setting for the address an acceptor listens on: the venue binds the port on
// every interface. Its counterparties are meant to be on 127.0.0.1 (the load client refuses any other
// host).
#ifndef FIXGATE_BENCH_ECHO_VENUE_H
#define FIXGATE_BENCH_ECHO_VENUE_H

#include <cstdint>
#include <string>
#include <vector>

namespace fixgate {
namespace bench {

// A two-sided quote the venue publishes for a symbol in its market-data snapshots.
struct EchoQuote {
  std::string symbol;
  std::string bid_price;
  std::string offer_price;
};

// Everything a venue run needs; `run_echo_venue` checks every field and names the one that is wrong.
struct EchoVenueConfig {
  // -- sessions: one acceptor session per (sender, target) pair, all on one port
  int port = 0;
  std::vector<std::string> sender_comp_ids;
  std::vector<std::string> target_comp_ids;
  int heartbeat_seconds = 30;
  std::string data_dictionary;        // FIX44.xml
  std::string state_dir;              // the settings file, and the file store when chosen
  bool file_store = false;            // FileStore under state_dir/store; MemoryStore otherwise
  bool reset_on_logon = false;
  bool persist_messages = false;      // keep sent messages for resends (memory grows with every message)
  // -- behaviour
  std::string mode = "ack";           // "ack", "fill" or "ioc"
  double duration_seconds = 0.0;      // stop after this long; 0 runs until SIGINT or SIGTERM
  std::string ready_file;             // written once the acceptor listens; empty for none
  std::vector<EchoQuote> quotes;      // symbols without a quote get 99.99 / 100.01
  std::string quote_size = "100";     // MDEntrySize of every quoted side
};

// What a venue run did. Counters count messages over every session.
struct EchoVenueReport {
  int64_t logons = 0;
  int64_t logouts = 0;
  int64_t orders_received = 0;
  int64_t cancels_received = 0;
  int64_t replaces_received = 0;
  int64_t status_requests_received = 0;
  int64_t mass_status_requests_received = 0;
  int64_t market_data_requests_received = 0;
  int64_t execution_reports_sent = 0;
  int64_t cancel_rejects_sent = 0;
  int64_t market_data_snapshots_sent = 0;
  int64_t send_failures = 0;          // Session::send returned false (the session was not logged on)
  int64_t unsupported_messages = 0;   // answered with a BusinessMessageReject by QuickFIX
  int64_t callback_errors = 0;        // exceptions caught in callbacks (never let out)
  int64_t resting_orders = 0;         // at the end, over every session
  double elapsed_seconds = 0.0;       // from listening to the start of the shutdown
  std::string stopped_by;             // "duration" or "signal"
  int signal_number = 0;
  std::string settings_file;
};

// Run the venue until `config.duration_seconds` pass or SIGINT/SIGTERM arrives, then log every
// session out, stop QuickFIX and fill `report`. Meant to be called without the GIL.
//
// Throws std::invalid_argument for a wrong config field (the message names it), std::runtime_error
// when another peer runs in this process or a file cannot be written, and FIX::ConfigError or
// FIX::RuntimeError when QuickFIX refuses its settings or cannot listen.
void run_echo_venue(const EchoVenueConfig& config, EchoVenueReport& report);

}  // namespace bench
}  // namespace fixgate

#endif  // FIXGATE_BENCH_ECHO_VENUE_H
