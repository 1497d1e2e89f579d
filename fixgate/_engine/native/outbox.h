// Outgoing bytes of one session that never block the thread that sends them.
//
// QuickFIX C++ writes a message with a blocking send() on whichever thread calls Session::send, while
// holding that session's lock. A peer that stops reading would then stop the sending thread: a venue
// thread relaying reports to a client that no longer reads froze the whole gateway. An Outbox takes
// the place of the session's Responder: it writes what the socket accepts at once (MSG_DONTWAIT) and
// keeps the rest in a bounded queue that the engine's service thread writes out as the socket drains.
// A peer whose queue passes its byte bound, or that makes no progress for its stall limit, is a slow
// consumer: its socket is shut down, QuickFIX logs the session out, and a client gets what it missed
// through QuickFIX's resend when it logs on again (reports are stored before they are sent).
#ifndef FIXGATE_ENGINE_OUTBOX_H
#define FIXGATE_ENGINE_OUTBOX_H

#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

#include "quickfix/Responder.h"

#include "numbers.h"

namespace fixgate {

class Outbox : public FIX::Responder {
public:
    // `wake` tells the service thread that bytes are queued.
    Outbox(int64_t max_queued_bytes, std::function<void()> wake)
        : max_queued_bytes_(max_queued_bytes), wake_(std::move(wake)) {}

    // Take over from `connection` (QuickFIX's own responder for this connection, writing to `fd`).
    void attach(FIX::Responder* connection, int fd) {
        std::lock_guard<std::mutex> lock(mutex_);
        connection_ = connection;
        fd_ = fd;
        pending_.clear();
        offset_ = 0;
        slow_ = false;
        last_progress_ns_ = monotonic_ns();
        passthrough_.store(false, std::memory_order_release);
        attached_.store(true, std::memory_order_release);
    }

    // Over TLS the bytes must go through the connection's own SSL_write, which blocks: the outbox passes
    // each message through and times it, and the engine's send watcher shuts down a peer whose send has
    // been blocked past the stall limit (watch), so that a TLS peer that stops reading holds the sending
    // thread for that long at most, never for ever.
    void attach_passthrough(FIX::Responder* connection, int fd) {
        attach(connection, fd);
        passthrough_.store(true, std::memory_order_release);
    }

    int fd() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return fd_;
    }

    // -- Responder (called by QuickFIX with the session's lock held) -------------------------------

    bool send(const std::string& message) override {
        if (passthrough_.load(std::memory_order_acquire)) return send_through(message);
        std::lock_guard<std::mutex> lock(mutex_);
        if (fd_ < 0 || slow_) return false;
        size_t written = 0;
        if (queued() == 0) {
            while (written < message.size()) {
                ssize_t count = ::send(fd_, message.data() + written, message.size() - written,
                                       MSG_DONTWAIT | MSG_NOSIGNAL);
                if (count > 0) {
                    written += (size_t)count;
                    continue;
                }
                if (count < 0 && errno == EINTR) continue;
                if (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
                break;
            }
            bytes_written_ += (int64_t)written;
            if (written == message.size()) {
                last_progress_ns_ = monotonic_ns();
                return true;
            }
        }
        if ((int64_t)(queued() + message.size() - written) > max_queued_bytes_) {
            slow_ = true;
            slow_reason_ = "more than " + std::to_string(max_queued_bytes_) + " bytes queued to a peer that does not read";
            ::shutdown(fd_, SHUT_RDWR);
            slow_count_.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        if (queued() == 0) last_progress_ns_ = monotonic_ns();
        pending_.append(message, written, std::string::npos);
        queued_bytes_.store((int64_t)queued(), std::memory_order_relaxed);
        if (queued_bytes_.load(std::memory_order_relaxed) > peak_queued_bytes_) peak_queued_bytes_ = queued();
        wake_();
        return true;
    }

    void disconnect() override {
        FIX::Responder* connection;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            connection = connection_;
            connection_ = nullptr;
            fd_ = -1;
            pending_.clear();
            offset_ = 0;
            queued_bytes_.store(0, std::memory_order_relaxed);
            attached_.store(false, std::memory_order_release);
            passthrough_.store(false, std::memory_order_release);
        }
        if (connection != nullptr) connection->disconnect();
    }

    // A TLS peer whose send has been blocked past the stall limit: shut its socket down (the blocked
    // SSL_write then fails, and QuickFIX drops the session).
    void watch(int64_t now_ns, int64_t stall_limit_ns) {
        int64_t since = sending_since_.load(std::memory_order_acquire);
        if (since == 0 || now_ns - since <= stall_limit_ns) return;
        std::lock_guard<std::mutex> lock(mutex_);
        if (fd_ < 0 || slow_) return;
        slow_ = true;
        slow_reason_ = "a TLS send blocked for more than " + std::to_string(stall_limit_ns / 1000000) +
                       " ms: the peer does not read";
        ::shutdown(fd_, SHUT_RDWR);
        slow_count_.fetch_add(1, std::memory_order_relaxed);
    }

    // -- The service thread ------------------------------------------------------------------------

    // The socket to poll for writability, or -1 when nothing is queued.
    int pending_fd() {
        std::lock_guard<std::mutex> lock(mutex_);
        return (fd_ >= 0 && !slow_ && queued() > 0) ? fd_ : -1;
    }

    // Write what the socket takes now; shut a stalled peer down. Returns the bytes written.
    int64_t flush(int64_t now_ns, int64_t stall_limit_ns) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (fd_ < 0 || slow_ || queued() == 0) return 0;
        int64_t total = 0;
        while (queued() > 0) {
            ssize_t count = ::send(fd_, pending_.data() + offset_, queued(), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (count > 0) {
                offset_ += (size_t)count;
                total += count;
                continue;
            }
            if (count < 0 && errno == EINTR) continue;
            if (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                // The connection is gone; QuickFIX's reader will see it too.
                pending_.clear();
                offset_ = 0;
                break;
            }
            break;
        }
        if (total > 0) {
            last_progress_ns_ = now_ns;
            bytes_written_ += total;
        }
        if (queued() == 0) {
            pending_.clear();
            offset_ = 0;
        } else if (offset_ > (1u << 20) && offset_ * 2 > pending_.size()) {
            pending_.erase(0, offset_);
            offset_ = 0;
        }
        queued_bytes_.store((int64_t)queued(), std::memory_order_relaxed);
        if (queued() > 0 && now_ns - last_progress_ns_ > stall_limit_ns) {
            slow_ = true;
            slow_reason_ = "no byte read for " + std::to_string(stall_limit_ns / 1000000) + " ms with " +
                           std::to_string(queued()) + " bytes queued";
            ::shutdown(fd_, SHUT_RDWR);
            slow_count_.fetch_add(1, std::memory_order_relaxed);
        }
        return total;
    }

    // Return and clear why the peer was found slow (empty when it was not).
    std::string take_slow_reason() {
        std::lock_guard<std::mutex> lock(mutex_);
        std::string reason;
        reason.swap(slow_reason_);
        return reason;
    }

    // -- Snapshots (any thread) --------------------------------------------------------------------

    bool attached() const { return attached_.load(std::memory_order_acquire); }
    int64_t queued_bytes() const { return queued_bytes_.load(std::memory_order_relaxed); }
    int64_t slow_count() const { return slow_count_.load(std::memory_order_relaxed); }
    int64_t bytes_written() {
        std::lock_guard<std::mutex> lock(mutex_);
        return bytes_written_;
    }
    int64_t peak_queued_bytes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return peak_queued_bytes_;
    }

private:
    size_t queued() const { return pending_.size() - offset_; }

    // Called with the session's lock held (as every send and disconnect is): the connection stays.
    bool send_through(const std::string& message) {
        FIX::Responder* connection;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (fd_ < 0 || slow_ || connection_ == nullptr) return false;
            connection = connection_;
        }
        sending_since_.store(monotonic_ns(), std::memory_order_release);
        bool sent = connection->send(message);
        sending_since_.store(0, std::memory_order_release);
        std::lock_guard<std::mutex> lock(mutex_);
        if (sent) {
            bytes_written_ += (int64_t)message.size();
            last_progress_ns_ = monotonic_ns();
        }
        return sent && !slow_;
    }

    const int64_t max_queued_bytes_;
    std::function<void()> wake_;
    mutable std::mutex mutex_;          // a leaf: nothing else is locked while it is held
    FIX::Responder* connection_ = nullptr;
    int fd_ = -1;
    std::string pending_;
    size_t offset_ = 0;
    bool slow_ = false;
    std::string slow_reason_;
    int64_t last_progress_ns_ = 0;
    int64_t bytes_written_ = 0;
    int64_t peak_queued_bytes_ = 0;
    std::atomic<bool> attached_{false};
    std::atomic<bool> passthrough_{false};
    std::atomic<int64_t> sending_since_{0};
    std::atomic<int64_t> queued_bytes_{0};
    std::atomic<int64_t> slow_count_{0};
};

}  // namespace fixgate

#endif
