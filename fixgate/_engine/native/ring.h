// The event ring from the engine to the state thread, in Disruptor words.
//
// One producer at a time by construction: every push happens with the engine lock held (the lock's
// release/acquire orders one holder's pushes before the next holder's), so the ring is a plain
// single-producer single-consumer ring: a power-of-two `capacity`, unbounded int64 sequences `tail`
// (next to write, producer) and `head` (next to read, consumer), slot = sequence & mask, each side's
// cached copy of the other's sequence on its own cache line.
//
// A full ring never drops: the event goes to an overflow queue (held under the engine lock) that the
// consumer empties after the ring, in order, and the engine rejects new orders as BUSY until both
// have room again. The consumer sleeps on a condition variable; the producer wakes it when the ring
// fills past a threshold or for an urgent event, and the consumer wakes by itself after its timeout.
#ifndef FIXGATE_ENGINE_RING_H
#define FIXGATE_ENGINE_RING_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>

#include "event.h"

namespace fixgate {

class EventRing {
public:
    explicit EventRing(int64_t capacity) : capacity_(capacity), mask_(capacity - 1) {
        void* memory = nullptr;
        if (posix_memalign(&memory, 64, (size_t)capacity * sizeof(fg_event)) != 0) throw std::bad_alloc();
        slots_ = static_cast<fg_event*>(memory);
        // Touch every page now, so that no push pays a page fault.
        memset(slots_, 0, (size_t)capacity * sizeof(fg_event));
        wake_threshold_ = capacity / 8 > 0 ? capacity / 8 : 1;
    }
    ~EventRing() { free(slots_); }
    EventRing(const EventRing&) = delete;
    EventRing& operator=(const EventRing&) = delete;

    int64_t capacity() const { return capacity_; }

    // -- PRODUCER (engine lock held) --------------------------------------------------------------

    // Append `event`; never fails. Returns false when it went to the overflow queue.
    bool push(const fg_event& event, bool urgent) {
        bool in_ring = false;
        if (overflow_.empty()) {
            int64_t tail = tail_.load(std::memory_order_relaxed);
            if (tail - head_cache_ >= capacity_) {
                // ACQUIRE: the consumer's reads of the slots it released happened before.
                head_cache_ = head_.load(std::memory_order_acquire);
            }
            if (tail - head_cache_ < capacity_) {
                slots_[tail & mask_] = event;
                // RELEASE: the slot's bytes are visible before the new tail.
                tail_.store(tail + 1, std::memory_order_release);
                in_ring = true;
            }
        }
        if (!in_ring) {
            overflow_.push_back(event);
            overflow_count_.fetch_add(1, std::memory_order_relaxed);
            overflow_size_.store((int64_t)overflow_.size(), std::memory_order_relaxed);
            urgent = true;
        }
        if (sleeping_.load(std::memory_order_acquire) && (urgent || size() >= wake_threshold_)) wake();
        return in_ring;
    }

    // Room for `slots` more events without using the overflow queue (engine lock held).
    bool has_room(int64_t slots) {
        if (!overflow_.empty()) return false;
        int64_t tail = tail_.load(std::memory_order_relaxed);
        if (tail + slots - head_cache_ > capacity_) head_cache_ = head_.load(std::memory_order_acquire);
        return tail + slots - head_cache_ <= capacity_;
    }

    // -- CONSUMER (the state thread) --------------------------------------------------------------

    // Copy up to `limit` events from the ring into `out`; return how many.
    int64_t drain(fg_event* out, int64_t limit) {
        int64_t head = head_.load(std::memory_order_relaxed);
        if (tail_cache_ - head < limit) {
            // ACQUIRE: pairs with the producer's RELEASE of tail.
            tail_cache_ = tail_.load(std::memory_order_acquire);
        }
        int64_t count = tail_cache_ - head;
        if (count > limit) count = limit;
        for (int64_t i = 0; i < count; ++i) out[i] = slots_[(head + i) & mask_];
        if (count > 0) {
            // RELEASE: the copies above are done before the producer may reuse the slots.
            head_.store(head + count, std::memory_order_release);
        }
        return count;
    }

    // Take up to `limit` events from the overflow queue (engine lock held, ring already empty).
    int64_t drain_overflow(fg_event* out, int64_t limit) {
        int64_t count = 0;
        while (count < limit && !overflow_.empty()) {
            out[count++] = overflow_.front();
            overflow_.pop_front();
        }
        overflow_size_.store((int64_t)overflow_.size(), std::memory_order_relaxed);
        return count;
    }

    bool overflow_empty_relaxed() const { return overflow_size_.load(std::memory_order_relaxed) == 0; }

    // Wait until there may be events, or `timeout_ms` passed.
    void wait(int64_t timeout_ms) {
        std::unique_lock<std::mutex> lock(wait_lock_);
        sleeping_.store(true, std::memory_order_release);
        if (size() == 0 && overflow_empty_relaxed() && !woken_) {
            wait_condition_.wait_for(lock, std::chrono::milliseconds(timeout_ms));
        }
        woken_ = false;
        sleeping_.store(false, std::memory_order_release);
    }

    void wake() {
        {
            std::lock_guard<std::mutex> lock(wait_lock_);
            woken_ = true;
        }
        wait_condition_.notify_one();
    }

    // -- SNAPSHOTS (any thread) -------------------------------------------------------------------

    int64_t size() const {
        return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
    }
    int64_t overflow_size() const { return overflow_size_.load(std::memory_order_relaxed); }
    int64_t overflow_count() const { return overflow_count_.load(std::memory_order_relaxed); }
    int64_t pushed() const { return tail_.load(std::memory_order_relaxed); }

private:
    const int64_t capacity_;
    const int64_t mask_;
    fg_event* slots_ = nullptr;
    int64_t wake_threshold_;
    std::deque<fg_event> overflow_;                 // written under the engine lock only
    alignas(64) std::atomic<int64_t> tail_{0};      // written by the producer only
    int64_t head_cache_ = 0;                        // the producer's last ACQUIRE read of head
    std::atomic<int64_t> overflow_count_{0};
    std::atomic<int64_t> overflow_size_{0};
    alignas(64) std::atomic<int64_t> head_{0};      // written by the consumer only
    int64_t tail_cache_ = 0;                        // the consumer's last ACQUIRE read of tail
    alignas(64) std::atomic<bool> sleeping_{false};
    std::mutex wait_lock_;
    std::condition_variable wait_condition_;
    bool woken_ = false;
};

}  // namespace fixgate

#endif
