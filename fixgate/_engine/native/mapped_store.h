// A QuickFIX MessageStore over a memory-mapped file: what FileStore keeps, without a system call per
// message.
//
// QuickFIX's FileStore writes every stored message with fseek, fprintf and fflush to two files, and
// every sequence number change with another rewind, fprintf and fflush: three to four system calls
// for each message a gateway sends, one for each it receives. This store keeps the same things (the
// messages sent, for resend; the next sequence numbers; the session's creation time) in one file
// mapped into memory: a store is a copy into the page cache. A crash of the process loses nothing
// (the kernel owns those pages); a power loss can lose what the kernel had not written back, as
// with FileStore, which never calls fsync either.
//
// File: a 4096-byte header (magic, version, next sender and target sequence numbers, creation time,
// the end of the records) and then records: seq (int32), length (int32), the message, padded to 8.
// The header's end is moved after a record is complete, so a record torn by a crash is not read.
// A session that has FileStore files and no mapped file yet starts from them (sequence numbers,
// creation time and stored messages are copied once).
#ifndef FIXGATE_ENGINE_MAPPED_STORE_H
#define FIXGATE_ENGINE_MAPPED_STORE_H

#include <stdint.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "quickfix/MessageStore.h"
#include "quickfix/SessionID.h"

namespace fixgate {

class MappedStore : public FIX::MessageStore {
public:
    // `path` is the file; `filestore_prefix` names FileStore's files of the same session, to start
    // from when the mapped file does not exist yet ("" for none).
    MappedStore(const std::string& path, const std::string& filestore_prefix, int64_t initial_bytes);
    ~MappedStore() override;

    bool set(int seq, const std::string& message) throw(FIX::IOException) override;
    void get(int begin, int end, std::vector<std::string>& out) const throw(FIX::IOException) override;
    int getNextSenderMsgSeqNum() const throw(FIX::IOException) override;
    int getNextTargetMsgSeqNum() const throw(FIX::IOException) override;
    void setNextSenderMsgSeqNum(int value) throw(FIX::IOException) override;
    void setNextTargetMsgSeqNum(int value) throw(FIX::IOException) override;
    void incrNextSenderMsgSeqNum() throw(FIX::IOException) override;
    void incrNextTargetMsgSeqNum() throw(FIX::IOException) override;
    FIX::UtcTimeStamp getCreationTime() const throw(FIX::IOException) override;
    void reset() throw(FIX::IOException) override;
    void refresh() throw(FIX::IOException) override;

private:
    struct Header;
    Header* header() const;
    void open_file();
    void map(int64_t bytes);
    void load_index();
    void import_filestore(const std::string& prefix);
    void start_new();

    std::string path_;
    int fd_ = -1;
    char* base_ = nullptr;
    int64_t mapped_ = 0;
    int64_t initial_bytes_;
    std::map<int, int64_t> offsets_;      // seq -> record offset
    mutable std::mutex mutex_;            // a leaf; QuickFIX also serializes a session's store calls
};

class MappedStoreFactory : public FIX::MessageStoreFactory {
public:
    // Files go to `directory` as <BeginString>-<Sender>-<Target>.store; FileStore's files of a session,
    // if any, are read from `filestore_directory` the first time.
    MappedStoreFactory(std::string directory, std::string filestore_directory, int64_t initial_bytes = 64 << 20)
        : directory_(std::move(directory)), filestore_directory_(std::move(filestore_directory)),
          initial_bytes_(initial_bytes) {}

    FIX::MessageStore* create(const FIX::SessionID& id) override;
    void destroy(FIX::MessageStore* store) override { delete store; }

private:
    std::string directory_;
    std::string filestore_directory_;
    int64_t initial_bytes_;
};

}  // namespace fixgate

#endif
