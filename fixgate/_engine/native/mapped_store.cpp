// See mapped_store.h.
#include "mapped_store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "quickfix/FileStore.h"

namespace fixgate {

namespace {
const char MAGIC[8] = {'F', 'G', 'S', 'T', 'O', 'R', 'E', '1'};
const int64_t HEADER_BYTES = 4096;

int64_t padded(int64_t bytes) { return (bytes + 7) & ~int64_t(7); }

FIX::IOException failure(const std::string& path, const char* what) {
    return FIX::IOException(path + ": " + what + ": " + strerror(errno));
}
}  // namespace

struct MappedStore::Header {
    char magic[8];
    int64_t version;
    int64_t next_sender;
    int64_t next_target;
    int64_t creation_seconds;
    int64_t creation_nanoseconds;
    int64_t end;                      // offset just past the last complete record
};

struct Record {
    int32_t seq;
    int32_t length;
};

MappedStore::MappedStore(const std::string& path, const std::string& filestore_prefix, int64_t initial_bytes)
    : path_(path), initial_bytes_(initial_bytes < 2 * HEADER_BYTES ? 2 * HEADER_BYTES : initial_bytes) {
    bool existed = access(path_.c_str(), F_OK) == 0;
    open_file();
    if (!existed || memcmp(header()->magic, MAGIC, sizeof(MAGIC)) != 0) {
        start_new();
        if (!existed && !filestore_prefix.empty()) import_filestore(filestore_prefix);
    }
    load_index();
}

MappedStore::~MappedStore() {
    if (base_ != nullptr) munmap(base_, (size_t)mapped_);
    if (fd_ >= 0) close(fd_);
}

MappedStore::Header* MappedStore::header() const { return reinterpret_cast<Header*>(base_); }

void MappedStore::open_file() {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw failure(path_, "cannot open the store");
    struct stat info;
    if (fstat(fd_, &info) != 0) throw failure(path_, "cannot stat the store");
    int64_t bytes = info.st_size < initial_bytes_ ? initial_bytes_ : info.st_size;
    map(bytes);
}

void MappedStore::map(int64_t bytes) {
    if (ftruncate(fd_, bytes) != 0) throw failure(path_, "cannot size the store");
    if (base_ == nullptr) {
        void* memory = mmap(nullptr, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
        if (memory == MAP_FAILED) throw failure(path_, "cannot map the store");
        base_ = static_cast<char*>(memory);
    } else {
        void* memory = mremap(base_, (size_t)mapped_, (size_t)bytes, MREMAP_MAYMOVE);
        if (memory == MAP_FAILED) throw failure(path_, "cannot grow the store");
        base_ = static_cast<char*>(memory);
    }
    mapped_ = bytes;
}

void MappedStore::start_new() {
    Header* head = header();
    memset(head, 0, sizeof(Header));
    head->version = 1;
    head->next_sender = 1;
    head->next_target = 1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    head->creation_seconds = now.tv_sec;
    head->creation_nanoseconds = now.tv_nsec;
    head->end = HEADER_BYTES;
    memcpy(head->magic, MAGIC, sizeof(MAGIC));
    offsets_.clear();
}

void MappedStore::load_index() {
    offsets_.clear();
    int64_t end = header()->end;
    if (end < HEADER_BYTES || end > mapped_) throw FIX::IOException(path_ + ": the store's header is damaged");
    for (int64_t at = HEADER_BYTES; at + (int64_t)sizeof(Record) <= end;) {
        const Record* record = reinterpret_cast<const Record*>(base_ + at);
        if (record->length < 0 || at + (int64_t)sizeof(Record) + record->length > end)
            throw FIX::IOException(path_ + ": a stored message is damaged");
        offsets_[record->seq] = at;
        at += padded((int64_t)sizeof(Record) + record->length);
    }
}

void MappedStore::import_filestore(const std::string& prefix) {
    // prefix: <directory>/<BeginString>-<Sender>-<Target>; FileStore reads them (and creates any
    // of its files that are missing, so only a complete set is read).
    for (const char* suffix : {".body", ".header", ".seqnums", ".session"})
        if (access((prefix + suffix).c_str(), F_OK) != 0) return;
    size_t slash = prefix.rfind('/');
    std::string directory = prefix.substr(0, slash);
    std::string name = prefix.substr(slash + 1);
    size_t first = name.find('-');
    size_t second = name.find('-', first + 1);
    if (first == std::string::npos || second == std::string::npos) return;
    FIX::SessionID id(name.substr(0, first), name.substr(first + 1, second - first - 1), name.substr(second + 1));
    FIX::FileStore old(directory, id);
    int next_sender = old.getNextSenderMsgSeqNum();
    std::vector<std::string> messages;
    if (next_sender > 1) old.get(1, next_sender - 1, messages);
    FIX::UtcTimeStamp created = old.getCreationTime();
    header()->creation_seconds = (int64_t)created.getTimeT();
    header()->creation_nanoseconds = created.getNanosecond();
    // Stored messages carry their own MsgSeqNum; keep them under it.
    for (const std::string& message : messages) {
        size_t at = message.find("\00134=");
        if (at == std::string::npos) continue;
        set(atoi(message.c_str() + at + 4), message);
    }
    header()->next_sender = next_sender;
    header()->next_target = old.getNextTargetMsgSeqNum();
}

bool MappedStore::set(int seq, const std::string& message) throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t at = header()->end;
    int64_t bytes = padded((int64_t)sizeof(Record) + (int64_t)message.size());
    if (at + bytes > mapped_) {
        int64_t grown = mapped_;
        while (at + bytes > grown) grown *= 2;
        map(grown);
    }
    Record* record = reinterpret_cast<Record*>(base_ + at);
    record->seq = seq;
    record->length = (int32_t)message.size();
    memcpy(base_ + at + sizeof(Record), message.data(), message.size());
    // The record is whole before the header says so (a crash can only cut after the end).
    __atomic_store_n(&header()->end, at + bytes, __ATOMIC_RELEASE);
    offsets_[seq] = at;
    return true;
}

void MappedStore::get(int begin, int end, std::vector<std::string>& out) const throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    out.clear();
    for (auto it = offsets_.lower_bound(begin); it != offsets_.end() && it->first <= end; ++it) {
        const Record* record = reinterpret_cast<const Record*>(base_ + it->second);
        out.emplace_back(base_ + it->second + sizeof(Record), (size_t)record->length);
    }
}

int MappedStore::getNextSenderMsgSeqNum() const throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    return (int)header()->next_sender;
}

int MappedStore::getNextTargetMsgSeqNum() const throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    return (int)header()->next_target;
}

void MappedStore::setNextSenderMsgSeqNum(int value) throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    header()->next_sender = value;
}

void MappedStore::setNextTargetMsgSeqNum(int value) throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    header()->next_target = value;
}

void MappedStore::incrNextSenderMsgSeqNum() throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++header()->next_sender;
}

void MappedStore::incrNextTargetMsgSeqNum() throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++header()->next_target;
}

FIX::UtcTimeStamp MappedStore::getCreationTime() const throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    return FIX::UtcTimeStamp((time_t)header()->creation_seconds, (int)header()->creation_nanoseconds, 9);
}

void MappedStore::reset() throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    start_new();
    // Give back the space of a long day's messages.
    if (mapped_ > initial_bytes_) {
        munmap(base_, (size_t)mapped_);
        base_ = nullptr;
        mapped_ = 0;
        if (ftruncate(fd_, HEADER_BYTES) != 0) throw failure(path_, "cannot shrink the store");
        map(initial_bytes_);
        start_new();
    }
}

void MappedStore::refresh() throw(FIX::IOException) {
    std::lock_guard<std::mutex> lock(mutex_);
    load_index();
}

FIX::MessageStore* MappedStoreFactory::create(const FIX::SessionID& id) {
    std::string name = id.getBeginString().getValue() + "-" + id.getSenderCompID().getValue() + "-" +
                       id.getTargetCompID().getValue();
    return new MappedStore(directory_ + "/" + name + ".store",
                           filestore_directory_.empty() ? std::string() : filestore_directory_ + "/" + name,
                           initial_bytes_);
}

}  // namespace fixgate
