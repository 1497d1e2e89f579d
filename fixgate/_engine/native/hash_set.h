// A day's worth of ids in little memory: an open-addressing set of 64-bit hashes.
//
// The duplicate checks (a client's ClOrdIDs, the venues' ExecIDs of fills booked) must remember every
// id of the trading day; at tens of thousands of orders a second a set of strings would grow by
// about 100 bytes an id. This set keeps 8 bytes an id (16 with the load factor). Two different ids
// share a hash with a probability of about n^2 / 2^65 in a day (1e-7 at 1.5 million ids): the rare
// false positive is a refusal ("duplicate ClOrdID"), the safe side.
#ifndef FIXGATE_ENGINE_HASH_SET_H
#define FIXGATE_ENGINE_HASH_SET_H

#include <stdint.h>
#include <string.h>

#include <string>
#include <vector>

namespace fixgate {

// FNV-1a over the bytes, then a finalizer (splitmix64) so that near ids spread; never 0.
inline uint64_t hash_id(const char* data, size_t length) {
    uint64_t hash = 1469598103934665603ULL;
    for (size_t i = 0; i < length; ++i) {
        hash ^= (unsigned char)data[i];
        hash *= 1099511628211ULL;
    }
    hash ^= hash >> 30;
    hash *= 0xbf58476d1ce4e5b9ULL;
    hash ^= hash >> 27;
    hash *= 0x94d049bb133111ebULL;
    hash ^= hash >> 31;
    return hash ? hash : 1;
}

inline uint64_t hash_id(const std::string& id) { return hash_id(id.data(), id.size()); }

class HashSet64 {
public:
    HashSet64() : slots_(1024, 0), mask_(1023) {}

    // Add `hash`; return false when it was there already.
    bool insert(uint64_t hash) {
        if ((size_ + 1) * 2 > slots_.size()) grow();
        return place(hash);
    }
    bool contains(uint64_t hash) const {
        for (size_t at = hash & mask_;; at = (at + 1) & mask_) {
            if (slots_[at] == hash) return true;
            if (slots_[at] == 0) return false;
        }
    }
    size_t size() const { return size_; }
    void clear() {
        slots_.assign(1024, 0);
        mask_ = 1023;
        size_ = 0;
    }

private:
    bool place(uint64_t hash) {
        for (size_t at = hash & mask_;; at = (at + 1) & mask_) {
            if (slots_[at] == hash) return false;
            if (slots_[at] == 0) {
                slots_[at] = hash;
                ++size_;
                return true;
            }
        }
    }
    void grow() {
        std::vector<uint64_t> old;
        old.swap(slots_);
        slots_.assign(old.size() * 2, 0);
        mask_ = slots_.size() - 1;
        size_ = 0;
        for (uint64_t hash : old)
            if (hash) place(hash);
    }

    std::vector<uint64_t> slots_;
    size_t mask_;
    size_t size_ = 0;
};

}  // namespace fixgate

#endif
