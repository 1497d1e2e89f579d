// What both benchmark peers share: the run's stop signal and wake-ups, the clock, the QuickFIX
// settings file, UTC timestamps for the wire, and the rule that no exception leaves a callback.
//
// One peer runs per process at a time (the harness starts each peer in its own process): a run owns
// the SIGINT/SIGTERM handlers while it lasts and gives the previous ones back when it ends.
#ifndef FIXGATE_BENCH_PEER_RUNTIME_H
#define FIXGATE_BENCH_PEER_RUNTIME_H

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <quickfix/Exceptions.h>

namespace fixgate {
namespace bench {

// -- CLOCK ------------------------------------------------------------------------------------------

// Nanoseconds of CLOCK_MONOTONIC (std::chrono::steady_clock): for intervals, never for the wire.
int64_t monotonic_ns() noexcept;

// Write a FIX UTCTimestamp with microseconds (YYYYMMDD-HH:MM:SS.ffffff, 24 characters and a NUL) of
// the wall clock into `out`. The text up to the second is formatted once per second per thread.
void format_utc_timestamp_now(char (&out)[25]) noexcept;

// Six base-36 digits of the wall clock's milliseconds: a token that tells one run's identifiers
// (ClOrdIDs, OrderIDs, ExecIDs) from another's for weeks, and keeps them short.
std::string run_token();

// -- RUN SCOPE --------------------------------------------------------------------------------------

// The life of one peer run in this process.
//
// On construction it installs SIGINT and SIGTERM handlers that only set the stop flag and write to
// an eventfd (both async-signal-safe); on destruction it puts the previous handlers back. Threads
// that wait for the run's end sleep on the eventfd (`wait_ns`), never spin. A second RunScope while
// one is alive throws std::runtime_error.
class RunScope {
 public:
  RunScope();
  ~RunScope();
  RunScope(const RunScope&) = delete;
  RunScope& operator=(const RunScope&) = delete;

  // True once SIGINT or SIGTERM arrived during the run.
  bool signal_received() const noexcept;
  // The number of the signal that arrived, or 0.
  int signal_number() const noexcept;
  // Wake whoever sleeps in wait_ns (any thread; async-signal-safe).
  void wake() noexcept;
  // Sleep until woken, a signal arrives or `timeout_ns` passes; return true when woken or signalled.
  bool wait_ns(int64_t timeout_ns) noexcept;

 private:
  int wake_fd_;
  struct sigaction previous_interrupt_;
  struct sigaction previous_terminate_;
};

// Blocks SIGINT and SIGTERM in the calling thread while it lives, so that the threads QuickFIX starts
// meanwhile inherit a mask without them: a signal then never interrupts a QuickFIX socket call, and
// reaches the thread that waits for the run's end instead.
class SignalsBlockedInThisThread {
 public:
  SignalsBlockedInThisThread();
  ~SignalsBlockedInThisThread();
  SignalsBlockedInThisThread(const SignalsBlockedInThisThread&) = delete;
  SignalsBlockedInThisThread& operator=(const SignalsBlockedInThisThread&) = delete;

 private:
  sigset_t previous_;
};

// -- SETTINGS FILE ----------------------------------------------------------------------------------

// QuickFIX settings as text: a [DEFAULT] section and one [SESSION] per session, each a list of
// key=value lines, written to a file that SessionSettings then reads.
class SettingsText {
 public:
  void add_default(const std::string& key, const std::string& value);
  // Start a new [SESSION]; later `add_session_value` calls go to it.
  void begin_session();
  void add_session_value(const std::string& key, const std::string& value);
  std::string text() const;

 private:
  std::vector<std::pair<std::string, std::string>> defaults_;
  std::vector<std::vector<std::pair<std::string, std::string>>> sessions_;
};

// Create `path` and its parents (like mkdir -p); throw std::runtime_error naming the path on failure.
void make_directories(const std::string& path);

// Write `text` to `path` through a temporary file and a rename, so a reader never sees half of it.
void write_file_atomically(const std::string& path, const std::string& text);

// Throw std::invalid_argument unless `host` is the IPv4 loopback address or "localhost": the peers
// talk to 127.0.0.1 only.
void require_loopback_host(const std::string& host);

// -- CALLBACK GUARD ---------------------------------------------------------------------------------

// Run the body of fromApp: re-throw only the exceptions QuickFIX answers on the wire (a session
// Reject or a BusinessMessageReject); count anything else in `errors` and swallow it, because an
// exception outside a callback's exception specification ends the process.
template <typename Body>
void guard_from_app(std::atomic<int64_t>& errors, Body&& body) {
  try {
    body();
  } catch (const FIX::FieldNotFound&) {
    throw;
  } catch (const FIX::IncorrectDataFormat&) {
    throw;
  } catch (const FIX::IncorrectTagValue&) {
    throw;
  } catch (const FIX::UnsupportedMessageType&) {
    throw;
  } catch (...) {
    errors.fetch_add(1, std::memory_order_relaxed);
  }
}

// Run the body of a callback that must not throw at all (onCreate, onLogon, onLogout, toAdmin, toApp,
// fromAdmin of the peers): count every exception in `errors` and swallow it.
template <typename Body>
void guard(std::atomic<int64_t>& errors, Body&& body) noexcept {
  try {
    body();
  } catch (...) {
    errors.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace bench
}  // namespace fixgate

#endif  // FIXGATE_BENCH_PEER_RUNTIME_H
