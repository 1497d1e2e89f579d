// FIX message logs with Password(554) masked, buffered and written out by the service thread.
//
// QuickFIX's FileLog writes every message as it came, passwords included, with a write per message
// on the thread that sends or receives it. This log keeps one line per message in memory (masked)
// and the engine's service thread writes the lines out every 50 ms and at stop: a hard kill can lose
// the last interval of this audit record, never state (QuickFIX's stores and the journal hold that).
// Files: <dir>/<BeginString>-<Sender>-<Target>.messages.log (the same names and line format as the
// Python applications' logs) and .event.log for QuickFIX's session events (logon, resend, reset).
#ifndef FIXGATE_ENGINE_MESSAGE_LOG_H
#define FIXGATE_ENGINE_MESSAGE_LOG_H

#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <map>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "quickfix/Log.h"
#include "quickfix/SessionID.h"

#include "numbers.h"

namespace fixgate {

// Replace the value of every Password(554) field of a raw FIX message, and SOH with '|'.
inline void append_masked(std::string& out, const std::string& message) {
    if (message.compare(0, 4, "554=") != 0 && message.find("\001554=") == std::string::npos) {
        // No password (nearly every message): one copy, SOH made visible.
        size_t at = out.size();
        out.append(message);
        std::replace(out.begin() + (std::string::difference_type)at, out.end(), '\001', '|');
        return;
    }
    size_t start = 0;
    while (start <= message.size()) {
        size_t end = message.find('\x01', start);
        if (end == std::string::npos) end = message.size();
        if (end - start >= 4 && message.compare(start, 4, "554=") == 0) {
            out.append("554=********");
        } else {
            out.append(message, start, end - start);
        }
        if (end < message.size()) out.push_back('|');
        start = end + 1;
    }
}

// A log file rotates at the first write of a new UTC day and before a write that would take it past
// `max_bytes` (0: no size limit): it is renamed <name>.<YYYYMMDD-HHMMSS>[.<n>] and a new one begun.
class BufferedFile {
public:
    BufferedFile(std::string path, int64_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {}
    ~BufferedFile() { close(); }

    void add(const char* direction, const std::string& message, bool mask) {
        std::lock_guard<std::mutex> lock(mutex_);
        buffer_.append(utc_timestamp(realtime_ns()));
        buffer_.push_back(' ');
        buffer_.append(direction);
        buffer_.push_back(' ');
        if (mask) append_masked(buffer_, message);
        else buffer_.append(message);
        buffer_.push_back('\n');
    }

    // Write out the buffered lines; return false when the file could not be written.
    bool flush() {
        std::string lines;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            lines.swap(buffer_);
        }
        if (lines.empty()) return true;
        std::lock_guard<std::mutex> lock(file_mutex_);
        int64_t now_ns = realtime_ns();
        int64_t day = now_ns / NS_PER_DAY;
        bool ready = file_ != nullptr || open(day);
        if (ready && size_ > 0 && (day != day_ || (max_bytes_ > 0 && size_ + (int64_t)lines.size() > max_bytes_))) {
            rotate(day != day_ ? last_write_ns_ : now_ns);      // a day's file is named after its last write
            ready = open(day);
        }
        if (!ready) {
            keep(lines);                                         // written with the next flush that can
            return false;
        }
        bool ok = fwrite(lines.data(), 1, lines.size(), file_) == lines.size();
        size_ += (int64_t)lines.size();
        last_write_ns_ = now_ns;
        return fflush(file_) == 0 && ok;
    }

    int64_t rotations() const { return rotations_; }

    void close() {
        flush();
        std::lock_guard<std::mutex> lock(file_mutex_);
        if (file_ != nullptr) fclose(file_);
        file_ = nullptr;
    }

private:
    static constexpr int64_t NS_PER_DAY = 86400LL * 1000000000LL;
    static constexpr size_t MAX_KEPT = 64u << 20;       // lines kept while the file cannot be written

    void keep(std::string& lines) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (lines.size() + buffer_.size() > MAX_KEPT) return;     // a log that cannot be written for long
        lines.append(buffer_);
        buffer_.swap(lines);
    }

    // Open (append) the file; a file left from an earlier day is rotated first.
    bool open(int64_t day) {
        struct stat info;
        if (::stat(path_.c_str(), &info) == 0 && info.st_size > 0 && info.st_mtime / 86400 != day) {
            rotate((int64_t)info.st_mtime * 1000000000LL);
        }
        file_ = fopen(path_.c_str(), "a");
        if (file_ == nullptr) return false;
        fseek(file_, 0, SEEK_END);
        size_ = (int64_t)ftell(file_);
        day_ = day;
        if (last_write_ns_ == 0) last_write_ns_ = realtime_ns();
        return true;
    }

    void rotate(int64_t at_ns) {
        if (file_ != nullptr) fclose(file_);
        file_ = nullptr;
        time_t seconds = (time_t)(at_ns / 1000000000LL);
        struct tm parts;
        gmtime_r(&seconds, &parts);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &parts);
        std::string target = path_ + "." + stamp;
        struct stat info;
        for (int n = 1; ::stat(target.c_str(), &info) == 0; ++n) target = path_ + "." + stamp + "." + std::to_string(n);
        if (::rename(path_.c_str(), target.c_str()) == 0) ++rotations_;
        size_ = 0;
    }

    std::string path_;
    int64_t max_bytes_;
    std::mutex mutex_;          // a leaf: guards buffer_
    std::string buffer_;
    std::mutex file_mutex_;     // held only by the writer; guards file_, size_, day_
    FILE* file_ = nullptr;
    int64_t size_ = 0;
    int64_t day_ = -1;
    int64_t last_write_ns_ = 0;
    int64_t rotations_ = 0;
};

class MaskedLog : public FIX::Log {
public:
    MaskedLog(const std::string& directory, const std::string& name, int64_t max_bytes)
        : messages_(directory + "/" + name + ".messages.log", max_bytes),
          events_(directory + "/" + name + ".event.log", max_bytes) {}

    void clear() override {}
    void backup() override {}
    void onIncoming(const std::string& message) override { messages_.add("in", message, true); }
    void onOutgoing(const std::string& message) override { messages_.add("out", message, true); }
    void onEvent(const std::string& text) override { events_.add("event", text, false); }

    bool flush() { return messages_.flush() & events_.flush(); }
    int64_t rotations() const { return messages_.rotations() + events_.rotations(); }
    void close() {
        messages_.close();
        events_.close();
    }

private:
    BufferedFile messages_;
    BufferedFile events_;
};

// Hands QuickFIX one MaskedLog per session (and one for the engine's own events); keeps them all so
// that the service thread can flush them. Logs live as long as the factory.
class MaskedLogFactory : public FIX::LogFactory {
public:
    MaskedLogFactory(std::string directory, int64_t max_bytes)
        : directory_(std::move(directory)), max_bytes_(max_bytes) {}

    FIX::Log* create() override { return add("engine"); }
    FIX::Log* create(const FIX::SessionID& id) override {
        std::string name = id.getBeginString().getValue() + "-" + id.getSenderCompID().getValue() + "-" +
                           id.getTargetCompID().getValue();
        return add(name);
    }
    void destroy(FIX::Log*) override {}     // kept until the factory goes: the flusher may still hold it

    bool flush() {
        std::lock_guard<std::mutex> lock(mutex_);
        bool ok = true;
        for (auto& log : logs_) ok = log->flush() && ok;
        return ok;
    }
    void close() {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& log : logs_) log->close();
    }

private:
    // One log per name: the acceptor and the initiator each ask for the engine's own log, and two
    // writers on one file would rotate it under each other.
    FIX::Log* add(const std::string& name) {
        std::lock_guard<std::mutex> lock(mutex_);
        auto found = by_name_.find(name);
        if (found != by_name_.end()) return found->second;
        logs_.emplace_back(new MaskedLog(directory_, name, max_bytes_));
        by_name_[name] = logs_.back().get();
        return logs_.back().get();
    }

    std::string directory_;
    int64_t max_bytes_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<MaskedLog>> logs_;
    std::map<std::string, MaskedLog*> by_name_;
};

// QuickFIX wants a LogFactory even when nothing is to be logged.
class NullLog : public FIX::Log {
public:
    void clear() override {}
    void backup() override {}
    void onIncoming(const std::string&) override {}
    void onOutgoing(const std::string&) override {}
    void onEvent(const std::string&) override {}
};

class NullLogFactory : public FIX::LogFactory {
public:
    FIX::Log* create() override { return &log_; }
    FIX::Log* create(const FIX::SessionID&) override { return &log_; }
    void destroy(FIX::Log*) override {}

private:
    NullLog log_;
};

}  // namespace fixgate

#endif
