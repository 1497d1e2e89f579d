#include "peer_runtime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace fixgate {
namespace bench {

// -- CLOCK ------------------------------------------------------------------------------------------

int64_t monotonic_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

void write_digits(char* out, int width, long value) noexcept {
  for (int index = width - 1; index >= 0; --index) {
    out[index] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

}  // namespace

void format_utc_timestamp_now(char (&out)[25]) noexcept {
  // Written and read only by the calling thread.
  thread_local time_t cached_second = -1;
  thread_local char cached_prefix[18];  // "YYYYMMDD-HH:MM:SS" and a NUL
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (now.tv_sec != cached_second) {
    struct tm broken_down;
    gmtime_r(&now.tv_sec, &broken_down);
    write_digits(cached_prefix, 4, broken_down.tm_year + 1900);
    write_digits(cached_prefix + 4, 2, broken_down.tm_mon + 1);
    write_digits(cached_prefix + 6, 2, broken_down.tm_mday);
    cached_prefix[8] = '-';
    write_digits(cached_prefix + 9, 2, broken_down.tm_hour);
    cached_prefix[11] = ':';
    write_digits(cached_prefix + 12, 2, broken_down.tm_min);
    cached_prefix[14] = ':';
    write_digits(cached_prefix + 15, 2, broken_down.tm_sec);
    cached_prefix[17] = '\0';
    cached_second = now.tv_sec;
  }
  std::memcpy(out, cached_prefix, 17);
  out[17] = '.';
  write_digits(out + 18, 6, now.tv_nsec / 1000);
  out[24] = '\0';
}

std::string run_token() {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  uint64_t milliseconds = static_cast<uint64_t>(now.tv_sec) * 1000 + static_cast<uint64_t>(now.tv_nsec) / 1000000;
  const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string token(6, '0');
  for (int index = 5; index >= 0; --index) {
    token[index] = digits[milliseconds % 36];
    milliseconds /= 36;
  }
  return token;
}

// -- RUN SCOPE --------------------------------------------------------------------------------------

namespace {

// The process's one run: set by RunScope's constructor, cleared by its destructor.
std::atomic<bool> run_active{false};
// Set by the signal handler, read by the run's threads. Lock-free, so safe in a handler.
std::atomic<bool> stop_requested{false};
std::atomic<int> received_signal{0};
// The eventfd the handler writes to; -1 outside a run.
std::atomic<int> signal_wake_fd{-1};

static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "a signal handler may only touch lock-free atomics");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "a signal handler may only touch lock-free atomics");

void write_wake(int fd) noexcept {
  if (fd < 0) {
    return;
  }
  const uint64_t one = 1;
  const int saved_errno = errno;
  ssize_t written = ::write(fd, &one, sizeof one);
  (void)written;  // a full counter already means "woken"
  errno = saved_errno;
}

void on_stop_signal(int signal_number) {
  received_signal.store(signal_number, std::memory_order_relaxed);
  stop_requested.store(true, std::memory_order_release);
  write_wake(signal_wake_fd.load(std::memory_order_acquire));
}

}  // namespace

RunScope::RunScope() : wake_fd_(-1) {
  bool expected = false;
  if (!run_active.compare_exchange_strong(expected, true)) {
    throw std::runtime_error("a native benchmark peer is already running in this process; run one per process");
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    run_active.store(false);
    throw std::runtime_error(std::string("eventfd failed: ") + std::strerror(errno));
  }
  stop_requested.store(false);
  received_signal.store(0);
  signal_wake_fd.store(wake_fd_, std::memory_order_release);
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &previous_interrupt_);
  sigaction(SIGTERM, &action, &previous_terminate_);
}

RunScope::~RunScope() {
  sigaction(SIGINT, &previous_interrupt_, nullptr);
  sigaction(SIGTERM, &previous_terminate_, nullptr);
  signal_wake_fd.store(-1, std::memory_order_release);
  ::close(wake_fd_);
  run_active.store(false);
}

bool RunScope::signal_received() const noexcept { return stop_requested.load(std::memory_order_acquire); }

int RunScope::signal_number() const noexcept { return received_signal.load(std::memory_order_relaxed); }

void RunScope::wake() noexcept { write_wake(wake_fd_); }

bool RunScope::wait_ns(int64_t timeout_ns) noexcept {
  if (signal_received()) {
    return true;
  }
  struct pollfd waiting = {wake_fd_, POLLIN, 0};
  if (timeout_ns < 0) {
    timeout_ns = 0;
  }
  struct timespec timeout = {static_cast<time_t>(timeout_ns / 1000000000),
                             static_cast<long>(timeout_ns % 1000000000)};
  const int ready = ppoll(&waiting, 1, &timeout, nullptr);
  if (ready > 0) {
    uint64_t count;
    ssize_t drained = ::read(wake_fd_, &count, sizeof count);
    (void)drained;
    return true;
  }
  return signal_received();
}

SignalsBlockedInThisThread::SignalsBlockedInThisThread() {
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &blocked, &previous_);
}

SignalsBlockedInThisThread::~SignalsBlockedInThisThread() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

// -- SETTINGS FILE ----------------------------------------------------------------------------------

void SettingsText::add_default(const std::string& key, const std::string& value) {
  defaults_.emplace_back(key, value);
}

void SettingsText::begin_session() { sessions_.emplace_back(); }

void SettingsText::add_session_value(const std::string& key, const std::string& value) {
  if (sessions_.empty()) {
    throw std::logic_error("SettingsText: add_session_value before begin_session");
  }
  sessions_.back().emplace_back(key, value);
}

std::string SettingsText::text() const {
  std::string text = "# Written by fixgate.bench.native_peers from its arguments at start.\n[DEFAULT]\n";
  for (const auto& entry : defaults_) {
    text += entry.first + "=" + entry.second + "\n";
  }
  for (const auto& session : sessions_) {
    text += "\n[SESSION]\n";
    for (const auto& entry : session) {
      text += entry.first + "=" + entry.second + "\n";
    }
  }
  return text;
}

void make_directories(const std::string& path) {
  if (path.empty()) {
    throw std::invalid_argument("make_directories: expected a directory path, found an empty string");
  }
  std::string partial;
  size_t position = 0;
  while (position != std::string::npos) {
    position = path.find('/', position + 1);
    partial = path.substr(0, position);
    if (partial.empty()) {
      continue;
    }
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      throw std::runtime_error("cannot create directory " + partial + ": " + std::strerror(errno));
    }
  }
  struct stat status;
  if (::stat(path.c_str(), &status) != 0 || !S_ISDIR(status.st_mode)) {
    throw std::runtime_error("expected a directory at " + path + ", found something else");
  }
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  FILE* file = std::fopen(temporary.c_str(), "w");
  if (file == nullptr) {
    throw std::runtime_error("cannot write " + temporary + ": " + std::strerror(errno));
  }
  const size_t written = std::fwrite(text.data(), 1, text.size(), file);
  const bool closed = std::fclose(file) == 0;
  if (written != text.size() || !closed) {
    throw std::runtime_error("cannot write " + temporary + ": " + std::strerror(errno));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot rename " + temporary + " to " + path + ": " + std::strerror(errno));
  }
}

void require_loopback_host(const std::string& host) {
  if (host == "localhost") {
    return;
  }
  struct in_addr address;
  if (inet_pton(AF_INET, host.c_str(), &address) == 1 && (ntohl(address.s_addr) >> 24) == 127) {
    return;
  }
  throw std::invalid_argument("host: the benchmark peers talk to 127.0.0.1 only; found '" + host + "'");
}

}  // namespace bench
}  // namespace fixgate
