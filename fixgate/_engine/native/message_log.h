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

#include <algorithm>

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

class BufferedFile {
public:
    explicit BufferedFile(std::string path) : path_(std::move(path)) {}
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
        if (file_ == nullptr) file_ = fopen(path_.c_str(), "a");
        if (file_ == nullptr) return false;
        bool ok = fwrite(lines.data(), 1, lines.size(), file_) == lines.size();
        return fflush(file_) == 0 && ok;
    }

    void close() {
        flush();
        std::lock_guard<std::mutex> lock(file_mutex_);
        if (file_ != nullptr) fclose(file_);
        file_ = nullptr;
    }

private:
    std::string path_;
    std::mutex mutex_;          // a leaf: guards buffer_
    std::string buffer_;
    std::mutex file_mutex_;     // held only by the writer
    FILE* file_ = nullptr;
};

class MaskedLog : public FIX::Log {
public:
    MaskedLog(const std::string& directory, const std::string& name)
        : messages_(directory + "/" + name + ".messages.log"), events_(directory + "/" + name + ".event.log") {}

    void clear() override {}
    void backup() override {}
    void onIncoming(const std::string& message) override { messages_.add("in", message, true); }
    void onOutgoing(const std::string& message) override { messages_.add("out", message, true); }
    void onEvent(const std::string& text) override { events_.add("event", text, false); }

    bool flush() { return messages_.flush() & events_.flush(); }
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
    explicit MaskedLogFactory(std::string directory) : directory_(std::move(directory)) {}

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
    FIX::Log* add(const std::string& name) {
        std::lock_guard<std::mutex> lock(mutex_);
        logs_.emplace_back(new MaskedLog(directory_, name));
        return logs_.back().get();
    }

    std::string directory_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<MaskedLog>> logs_;
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
