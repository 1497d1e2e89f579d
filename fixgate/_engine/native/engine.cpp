// The native order path; see engine.h for the threads and the lock order.
#include "engine.h"
#include "listen.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <typeinfo>

#include "quickfix/Group.h"
#include "quickfix/ThreadedSocketConnection.h"
#include "quickfix/ThreadedSSLSocketConnection.h"

namespace fixgate {

// -- QUICKFIX INTERNALS -----------------------------------------------------------------------------

// A session's Responder and its lock are private members of FIX::Session. The engine needs both to
// put an Outbox in front of the connection (see outbox.h). An explicit template instantiation may
// name a private member (C++ [temp.explicit]): these two lines give member pointers to them.
namespace {
template <typename Tag, typename Tag::type Member>
struct Access {
    friend typename Tag::type member(Tag) { return Member; }
};
struct SessionResponder {
    typedef FIX::Responder* FIX::Session::*type;
    friend type member(SessionResponder);
};
struct SessionMutex {
    typedef FIX::Mutex FIX::Session::*type;
    friend type member(SessionMutex);
};
template struct Access<SessionResponder, &FIX::Session::m_pResponder>;
template struct Access<SessionMutex, &FIX::Session::m_mutex>;

// -- FIELDS -----------------------------------------------------------------------------------------

const int TAG_ACCOUNT = 1;
const int TAG_AVG_PX = 6;
const int TAG_CL_ORD_ID = 11;
const int TAG_CUM_QTY = 14;
const int TAG_EXEC_ID = 17;
const int TAG_EXEC_REF_ID = 19;
const int TAG_LAST_PX = 31;
const int TAG_LAST_QTY = 32;
const int TAG_MSG_SEQ_NUM = 34;
const int TAG_MSG_TYPE = 35;
const int TAG_ORDER_ID = 37;
const int TAG_ORDER_QTY = 38;
const int TAG_ORD_STATUS = 39;
const int TAG_ORD_TYPE = 40;
const int TAG_ORIG_CL_ORD_ID = 41;
const int TAG_POSS_DUP_FLAG = 43;
const int TAG_PRICE = 44;
const int TAG_REF_SEQ_NUM = 45;
const int TAG_SENDING_TIME = 52;
const int TAG_SIDE = 54;
const int TAG_SYMBOL = 55;
const int TAG_TEXT = 58;
const int TAG_TIME_IN_FORCE = 59;
const int TAG_TRANSACT_TIME = 60;
const int TAG_POSS_RESEND = 97;
const int TAG_CXL_REJ_REASON = 102;
const int TAG_ORD_REJ_REASON = 103;
const int TAG_NO_RELATED_SYM = 146;
const int TAG_EXEC_TYPE = 150;
const int TAG_LEAVES_QTY = 151;
const int TAG_MD_REQ_ID = 262;
const int TAG_SUBSCRIPTION_REQUEST_TYPE = 263;
const int TAG_MARKET_DEPTH = 264;
const int TAG_MD_UPDATE_TYPE = 265;
const int TAG_NO_MD_ENTRY_TYPES = 267;
const int TAG_NO_MD_ENTRIES = 268;
const int TAG_MD_ENTRY_TYPE = 269;
const int TAG_MD_ENTRY_PX = 270;
const int TAG_MD_UPDATE_ACTION = 279;
const int TAG_MD_ENTRY_POSITION_NO = 290;
const int TAG_REF_MSG_TYPE = 372;
const int TAG_BUSINESS_REJECT_REF_ID = 379;
const int TAG_CXL_REJ_RESPONSE_TO = 434;
const int TAG_USERNAME = 553;
const int TAG_PASSWORD = 554;
const int TAG_MASS_STATUS_REQ_ID = 584;
const int TAG_MASS_STATUS_REQ_TYPE = 585;
const int TAG_LAST_RPT_REQUESTED = 912;

const std::string EMPTY;

// The field's text, or nullptr when absent (no exception: an absent optional field is normal).
inline const std::string* field(const FIX::FieldMap& map, int tag) {
    if (!map.isSetField(tag)) return nullptr;
    return &map.getFieldRef(tag).getString();
}

inline const std::string& text_of(const FIX::FieldMap& map, int tag) {
    const std::string* value = field(map, tag);
    return value ? *value : EMPTY;
}

inline char char_of(const FIX::FieldMap& map, int tag, char otherwise = 0) {
    const std::string* value = field(map, tag);
    return value && value->size() == 1 ? (*value)[0] : otherwise;
}

FIX::Message new_message(const char* msg_type) {
    FIX::Message message;
    message.getHeader().setField(TAG_MSG_TYPE, msg_type);
    return message;
}

inline void set(FIX::FieldMap& map, int tag, const std::string& value) {
    if (!value.empty()) map.setField(tag, value);
}

inline void set_char(FIX::FieldMap& map, int tag, char value) {
    if (value) map.setField(tag, std::string(1, value));
}

// Copy `text` into a fixed event field; an id longer than the field becomes '#' + its hash in hex,
// which stays unique and stable (the venue's long ExecIDs still deduplicate).
void copy_text(char* out, size_t capacity, const std::string& text, bool hash_when_long) {
    if (text.size() < capacity) {
        memcpy(out, text.data(), text.size());
        out[text.size()] = 0;
        return;
    }
    if (hash_when_long) {
        snprintf(out, capacity, "#%016llx", (unsigned long long)hash_id(text));
        return;
    }
    memcpy(out, text.data(), capacity - 1);
    out[capacity - 1] = 0;
}

// An event's id field as the engine writes it: the same text `copy_text` stores.
std::string stored_id(const std::string& text, size_t capacity) {
    if (text.size() < capacity) return text;
    char buffer[32];
    snprintf(buffer, sizeof(buffer), "#%016llx", (unsigned long long)hash_id(text));
    return buffer;
}

int side_number(char side) { return side == '1' ? 1 : side == '2' ? 2 : side == '5' ? 5 : 0; }
int ord_type_number(char ord_type) { return ord_type == '1' ? 1 : ord_type == '2' ? 2 : 0; }
bool tif_supported(char tif) { return tif == '0' || tif == '1' || tif == '3' || tif == '4'; }
bool terminal(char status) { return status == '2' || status == '4' || status == '8' || status == 'C' || status == '3'; }

// RejectCode -> OrdRejReason(103).
const char* ord_rej_reason(int code) {
    switch (code) {
    case 3: case 35: return "1";            // unknown or not permitted instrument: unknown symbol
    case 4: case 30: case 36: return "2";   // halted, venue unavailable, gateway closed: exchange closed
    case 32: return "6";                    // duplicate order
    case 8: case 9: return "13";            // incorrect quantity
    case 6: case 7: case 33: return "11";   // unsupported order characteristic
    case 13: case 14: case 15: case 16: case 17: case 18: case 19: case 20: case 21: case 22: case 23:
    case 24: case 25: case 44: case 45: case 46: case 47: case 48: return "3";   // order exceeds limit
    case 49: return "99";                   // the venue's message rate: other, the text says why
    case 58: return "99";                   // self-match: other, the text says why
    case 59: return "99";                   // reduce-only: other, the text says why
    case 39: return "6";                    // duplicate order
    case 37: case 38: return "99";          // client killed, restricted: other (the text says why)
    default: return "99";
    }
}

const int CODE_OK = 0;
const int CODE_KILL_SWITCH = 1;
const int CODE_UNKNOWN_INSTRUMENT = 3;
const int CODE_INVALID_PRICE = 10;
const int CODE_VENUE_UNAVAILABLE = 30;
const int CODE_BUSY = 31;
const int CODE_DUPLICATE_CL_ORD_ID = 32;
const int CODE_INVALID_FIELD = 33;
const int CODE_INTERNAL_ERROR = 34;
const int CODE_INSTRUMENT_NOT_PERMITTED = 35;
const int CODE_GATEWAY_CLOSED = 36;
const int CODE_CLIENT_KILLED = 37;
const int CODE_VENUE_RATE_LIMIT = 49;
const int CODE_OVERFILL = 41;
const int CODE_REDUCE_ONLY = 59;
const int RISK_KILLED = 3;

const size_t MAX_ID_LENGTH = FG_TEXT_A - 1;    // a client's ClOrdID or Account

enum Task { TASK_CLIENT_LOGOUT = 1, TASK_VENUE_LOGON = 2, TASK_VENUE_LOGOUT = 3 };

// Marks the calling thread as inside a callback for the watchdog (outermost callback only).
thread_local int watch_slot = -1;
thread_local int watch_depth = 0;

}  // namespace

struct CallbackScope {
    Engine& engine;
    explicit CallbackScope(Engine& owner) : engine(owner) {
        if (watch_depth++ == 0) {
            if (watch_slot < 0) watch_slot = engine.next_slot_.fetch_add(1) % Engine::WATCH_SLOTS;
            engine.busy_since_[watch_slot].store(monotonic_ns(), std::memory_order_relaxed);
        }
    }
    ~CallbackScope() {
        if (--watch_depth == 0) engine.busy_since_[watch_slot].store(0, std::memory_order_relaxed);
    }
};

// -- CONSTRUCTION -----------------------------------------------------------------------------------

Engine::Engine(const EngineConfig& config, const fg_fast_api& fast)
    : config_(config), fast_(fast), ring_(config.ring_capacity) {
    for (auto& slot : busy_since_) slot.store(0);
    for (size_t i = 0; i < config_.instruments.size(); ++i) symbols_[config_.instruments[i].symbol] = (int)i;
    for (const InstrumentConfig& instrument : config_.instruments) quote_source_.push_back(instrument.venue);
    service_wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (service_wake_fd_ < 0) throw std::runtime_error("eventfd failed");
    auto wake = [this]() { wake_service(); };
    for (size_t i = 0; i < config_.clients.size(); ++i) {
        std::unique_ptr<ClientState> client(new ClientState());
        client->config = config_.clients[i];
        client->index = (int)i;
        client->id = FIX::SessionID("FIX.4.4", config_.comp_id, client->config.comp_id);
        client->outbox.reset(new Outbox(config_.max_queued_bytes, wake));
        client->permitted.assign(config_.instruments.size(), client->config.all_instruments);
        for (int instrument : client->config.instruments)
            if (instrument >= 0 && instrument < (int)config_.instruments.size()) client->permitted[instrument] = true;
        clients_.push_back(std::move(client));
    }
    for (size_t i = 0; i < config_.venues.size(); ++i) {
        std::unique_ptr<VenueState> venue(new VenueState());
        venue->config = config_.venues[i];
        venue->index = (int)i;
        venue->id = FIX::SessionID("FIX.4.4", config_.comp_id, venue->config.comp_id);
        venue->outbox.reset(new Outbox(config_.max_queued_bytes, wake));
        venue->bids.assign(config_.instruments.size(), 0.0);
        venue->asks.assign(config_.instruments.size(), 0.0);
        venue->quote_ns.assign(config_.instruments.size(), 0);
        venue->quote_venue_ns.assign(config_.instruments.size(), 0);
        venue->sent.resize(1 << 16);
        venues_.push_back(std::move(venue));
    }
    intent_fd_ = ::open(config_.intent_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (intent_fd_ < 0) throw std::runtime_error("cannot open the intent log " + config_.intent_log);
    if (!config_.fixlog_dir.empty()) {
        masked_logs_ = new MaskedLogFactory(config_.fixlog_dir, config_.fixlog_max_bytes);
        log_factory_.reset(masked_logs_);
    } else {
        log_factory_.reset(new NullLogFactory());
    }
    gate_factory_.reset(new LogonGateFactory(log_factory_.get(), this));
    // Building the acceptor and initiator creates the sessions (onCreate).
    if (!config_.acceptor_settings.empty()) {
        acceptor_settings_.reset(new FIX::SessionSettings(config_.acceptor_settings));
        if (config_.mapped_store) acceptor_store_.reset(new MappedStoreFactory(config_.store_dir, config_.store_dir));
        else acceptor_store_.reset(new FIX::FileStoreFactory(*acceptor_settings_));
        if (config_.acceptor_tls)
            acceptor_.reset(new FIX::ThreadedSSLSocketAcceptor(*this, *acceptor_store_, *acceptor_settings_,
                                                               *gate_factory_));
        else
            acceptor_.reset(new FIX::ThreadedSocketAcceptor(*this, *acceptor_store_, *acceptor_settings_,
                                                            *gate_factory_));
        for (auto& client : clients_) client->session = acceptor_->getSession(client->id);
    }
    for (size_t i = 0; i < config_.initiator_settings.size(); ++i) {
        InitiatorParts parts;
        parts.settings.reset(new FIX::SessionSettings(config_.initiator_settings[i]));
        if (config_.mapped_store) parts.store.reset(new MappedStoreFactory(config_.store_dir, config_.store_dir));
        else parts.store.reset(new FIX::FileStoreFactory(*parts.settings));
        bool tls = i < config_.initiator_tls.size() && config_.initiator_tls[i];
        if (tls)
            parts.initiator.reset(new FIX::ThreadedSSLSocketInitiator(*this, *parts.store, *parts.settings,
                                                                      *log_factory_));
        else
            parts.initiator.reset(new FIX::ThreadedSocketInitiator(*this, *parts.store, *parts.settings,
                                                                   *log_factory_));
        for (auto& venue : venues_) {
            FIX::Session* session = parts.initiator->getSession(venue->id);
            if (session != nullptr) venue->session = session;
        }
        initiators_.push_back(std::move(parts));
    }
}

Engine::~Engine() {
    if (started_) stop(0);
    acceptor_.reset();
    initiators_.clear();
    if (masked_logs_ != nullptr) masked_logs_->close();
    if (intent_fd_ >= 0) ::close(intent_fd_);
    if (service_wake_fd_ >= 0) ::close(service_wake_fd_);
}

// -- LIFE CYCLE -------------------------------------------------------------------------------------

void Engine::start() {
    if (started_) return;
    if (stopped_) throw std::runtime_error("an engine starts once; build a new one to start again");
    started_ = true;
    service_stop_.store(false);
    service_ = std::thread([this]() { service_loop(); });
    send_watch_ = std::thread([this]() { send_watch_loop(); });
    if (acceptor_) {
        set_listen_address(config_.acceptor_port, config_.acceptor_address);
        try {
            acceptor_->start();
        } catch (std::exception& error) {
            stop(0);
            throw std::runtime_error("the client acceptor cannot listen on " +
                                     (config_.acceptor_address.empty() ? std::string("0.0.0.0") : config_.acceptor_address) +
                                     " port " + std::to_string(config_.acceptor_port) + ": " + error.what());
        }
        std::string listening = listening_address(config_.acceptor_port);
        if (!config_.acceptor_address.empty() && config_.acceptor_address != "0.0.0.0" &&
            listening != config_.acceptor_address) {
            stop(0);
            throw std::runtime_error("the client acceptor listens on " +
                                     (listening.empty() ? std::string("nothing") : listening) + " port " +
                                     std::to_string(config_.acceptor_port) + ", not on " + config_.acceptor_address +
                                     " as configured: refusing to run");
        }
    }
    for (auto& parts : initiators_) parts.initiator->start();
}

void Engine::stop(int64_t logout_timeout_ms) {
    if (!started_) return;
    accepting_.store(false);
    std::vector<FIX::Session*> sessions;
    for (auto& client : clients_)
        if (client->session) sessions.push_back(client->session);
    for (auto& venue : venues_)
        if (venue->session) sessions.push_back(venue->session);
    for (FIX::Session* session : sessions)
        if (session->isLoggedOn()) session->logout("gateway stopping");
    int64_t deadline = monotonic_ns() + logout_timeout_ms * 1000000LL;
    while (monotonic_ns() < deadline) {
        bool any = false;
        for (FIX::Session* session : sessions) any = any || session->isLoggedOn();
        if (!any) break;
        usleep(5000);
    }
    // force: sessions still logged on are disconnected rather than waited for
    for (auto& parts : initiators_) parts.initiator->stop(true);
    if (acceptor_) acceptor_->stop(true);
    service_stop_.store(true);
    wake_service();
    if (service_.joinable()) service_.join();
    if (send_watch_.joinable()) send_watch_.join();
    // QuickFIX keeps one process-wide registry of sessions by SessionID: destroying the acceptor and
    // the initiator removes their sessions from it, so that a later engine in this process can
    // create sessions with the same ids. Nothing sends after this.
    {
        std::lock_guard<std::mutex> lock(lock_);
        for (auto& client : clients_) client->session = nullptr;
        for (auto& venue : venues_) venue->session = nullptr;
    }
    initiators_.clear();
    acceptor_.reset();
    if (masked_logs_ != nullptr) masked_logs_->flush();
    started_ = false;
    stopped_ = true;
}

void Engine::set_accepting(bool accepting, const std::string& reason) {
    {
        std::lock_guard<std::mutex> lock(closed_mutex_);
        closed_reason_ = reason;
    }
    accepting_.store(accepting);
}

std::string Engine::closed_reason() {
    std::lock_guard<std::mutex> lock(closed_mutex_);
    return closed_reason_.empty() ? std::string("the gateway is stopping") : closed_reason_;
}

// -- RECOVERY ---------------------------------------------------------------------------------------

void Engine::restore_order(const RestoredOrder& restored) {
    std::lock_guard<std::mutex> lock(lock_);
    Order& order = orders_[restored.order.id];
    order = restored.order;
    order.client_ids = restored.client_ids;
    if (order.session >= 0 && order.session < (int)clients_.size()) {
        ClientState& client = *clients_[order.session];
        for (const std::string& id : restored.client_ids) {
            client.order_ids[id] = order.id;
            client.used_ids.insert(hash_id(id));
        }
    }
    if (!order.in_book) {
        // A finished order of today (within the retention): a report the venue sends again finds it.
        order.finished = true;
        finished_.push_back(order.id);
    }
}

void Engine::restore_used_cl_ord_id(int session, const std::string& cl_ord_id) {
    std::lock_guard<std::mutex> lock(lock_);
    if (session >= 0 && session < (int)clients_.size()) clients_[session]->used_ids.insert(hash_id(cl_ord_id));
}

void Engine::restore_exec_id(const std::string& venue_exec_id) {
    std::lock_guard<std::mutex> lock(lock_);
    seen_exec_ids_.insert(hash_id(venue_exec_id));
}

void Engine::restore_next_event_seq(int64_t next) {
    std::lock_guard<std::mutex> lock(lock_);
    if (next > next_event_seq_) next_event_seq_ = next;
}

void Engine::restore_next_exec_id(int64_t next) {
    std::lock_guard<std::mutex> lock(lock_);
    if (next > next_exec_id_) next_exec_id_ = next;
}

void Engine::forget_day() {
    std::lock_guard<std::mutex> lock(lock_);
    seen_exec_ids_.clear();
    for (auto& client : clients_) {
        // Yesterday's finished orders give their ClOrdIDs back; a working order keeps its own (and those
        // it had before a replace), so that no two live orders ever share one.
        client->used_ids.clear();
        for (auto entry = client->order_ids.begin(); entry != client->order_ids.end();) {
            auto order = orders_.find(entry->second);
            if (order == orders_.end() || order->second.finished) {
                entry = client->order_ids.erase(entry);
                continue;
            }
            client->used_ids.insert(hash_id(entry->first));
            ++entry;
        }
    }
}

// -- SESSIONS ---------------------------------------------------------------------------------------

Engine::SessionRef Engine::find_session(const FIX::SessionID& id) {
    for (auto& entry : callback_ids_)
        if (entry.first == &id) return entry.second;
    SessionRef ref;
    const std::string& target = id.getTargetCompID().getValue();
    for (auto& client : clients_)
        if (client->config.comp_id == target) return SessionRef{false, client->index};
    for (auto& venue : venues_)
        if (venue->config.comp_id == target) return SessionRef{true, venue->index};
    return ref;
}

void Engine::onCreate(const FIX::SessionID& id) {
    // Called while the acceptor and initiator are built, before any thread of theirs runs.
    SessionRef ref = find_session(id);
    if (ref.index >= 0) {
        callback_ids_.emplace_back(&id, ref);
        if (ref.venue) venues_[ref.index]->callback_id = &id;
        else clients_[ref.index]->callback_id = &id;
    }
}

// The socket of a session's responder: QuickFIX's plain or TLS connection, or an outbox in front of
// one (-1 for anything else). The connections inherit Responder privately: a C-style cast converts
// all the same.
int Engine::connection_fd(FIX::Responder* responder) {
    if (typeid(*responder) == typeid(FIX::ThreadedSocketConnection))
        return ((FIX::ThreadedSocketConnection*)responder)->getSocket();
    if (typeid(*responder) == typeid(FIX::ThreadedSSLSocketConnection))
        return ((FIX::ThreadedSSLSocketConnection*)responder)->getSocket();
    if (typeid(*responder) == typeid(Outbox)) return static_cast<Outbox*>(responder)->fd();
    return -1;
}

void Engine::install_outbox(FIX::Session* session, Outbox* outbox) {
    if (session == nullptr) return;
    FIX::Locker locker(session->*member(SessionMutex()));
    FIX::Responder*& responder = session->*member(SessionResponder());
    if (responder == nullptr || responder == outbox) return;
    int fd = connection_fd(responder);
    if (fd < 0 || typeid(*responder) == typeid(Outbox)) return;      // a QuickFIX connection only
    if (typeid(*responder) == typeid(FIX::ThreadedSSLSocketConnection)) outbox->attach_passthrough(responder, fd);
    else outbox->attach(responder, fd);
    responder = outbox;
}

void Engine::onLogon(const FIX::SessionID& id) {
    CallbackScope scope(*this);
    try {
        SessionRef ref = find_session(id);
        if (ref.index < 0) return;
        if (ref.venue) {
            VenueState& venue = *venues_[ref.index];
            install_outbox(venue.session, venue.outbox.get());
            venue.logged_on.store(true);
            {
                std::lock_guard<std::mutex> lock(lock_);
                set_venue_state(venue, FG_VENUE_RECONCILING, "logged on");
            }
            std::lock_guard<std::mutex> tasks(service_mutex_);
            service_tasks_.emplace_back(TASK_VENUE_LOGON, ref.index);
        } else {
            ClientState& client = *clients_[ref.index];
            install_outbox(client.session, client.outbox.get());
            client.logged_on.store(true);
            std::lock_guard<std::mutex> lock(lock_);
            push_session_event(FG_EVENT_SESSION_LOGON, false, ref.index, "");
        }
        wake_service();
    } catch (std::exception& error) {
        counters_.callback_errors.fetch_add(1);
    }
}

void Engine::onLogout(const FIX::SessionID& id) {
    // QuickFIX holds this session's lock here: hand the work to the service thread.
    CallbackScope scope(*this);
    try {
        SessionRef ref = find_session(id);
        if (ref.index < 0) return;
        if (ref.venue) {
            venues_[ref.index]->logged_on.store(false);
            venues_[ref.index]->state.store(FG_VENUE_DOWN);
        } else {
            clients_[ref.index]->logged_on.store(false);
        }
        {
            std::lock_guard<std::mutex> tasks(service_mutex_);
            service_tasks_.emplace_back(ref.venue ? TASK_VENUE_LOGOUT : TASK_CLIENT_LOGOUT, ref.index);
        }
        wake_service();
    } catch (std::exception&) {
        counters_.callback_errors.fetch_add(1);
    }
}

void Engine::toAdmin(FIX::Message& message, const FIX::SessionID& id) {
    // QuickFIX holds this session's lock here.
    CallbackScope scope(*this);
    try {
        if (text_of(message.getHeader(), TAG_MSG_TYPE) != "A") return;
        SessionRef ref = find_session(id);
        if (ref.index < 0 || !ref.venue) return;
        VenueState& venue = *venues_[ref.index];
        if (!venue.config.username.empty()) {
            message.setField(TAG_USERNAME, venue.config.username);
            message.setField(TAG_PASSWORD, venue.config.password);
        }
        // The initiator's connection exists by now: the Logon itself goes out through the outbox.
        install_outbox(venue.session, venue.outbox.get());
    } catch (std::exception&) {
        counters_.callback_errors.fetch_add(1);
    }
}

void Engine::toApp(FIX::Message&, const FIX::SessionID&) throw(FIX::DoNotSend) {}

void Engine::fromAdmin(const FIX::Message& message, const FIX::SessionID& id)
    throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::RejectLogon) {
    CallbackScope scope(*this);
    SessionRef ref = find_session(id);
    if (ref.index < 0) return;
    const std::string& msg_type = text_of(message.getHeader(), TAG_MSG_TYPE);
    try {
        if (msg_type == "A" && !ref.venue) {
            ClientState& client = *clients_[ref.index];
            std::string refusal = logon_refusal(ref.index, field(message, TAG_USERNAME), field(message, TAG_PASSWORD));
            if (!refusal.empty()) {
                std::lock_guard<std::mutex> lock(lock_);
                push_logon_refused(ref.index, refusal);
                throw FIX::RejectLogon(refusal);
            }
            install_outbox(client.session, client.outbox.get());
        } else if (msg_type == "3" && ref.venue) {
            int64_t recv_ns = realtime_ns();
            std::lock_guard<std::mutex> lock(lock_);
            on_venue_reject(*venues_[ref.index], message, false, recv_ns);
        }
    } catch (FIX::RejectLogon&) {
        throw;
    } catch (std::exception& error) {
        counters_.callback_errors.fetch_add(1);
        std::lock_guard<std::mutex> lock(lock_);
        alarm(FG_ALARM_INTERNAL_ERROR, std::string("fromAdmin failed: ") + error.what());
        if (msg_type == "A") throw FIX::RejectLogon("logon could not be checked");
    }
}

void Engine::fromApp(const FIX::Message& message, const FIX::SessionID& id)
    throw(FIX::FieldNotFound, FIX::IncorrectDataFormat, FIX::IncorrectTagValue, FIX::UnsupportedMessageType) {
    int64_t recv_ns = realtime_ns();
    int64_t decode_started = monotonic_ns();
    CallbackScope scope(*this);
    counters_.messages_in.fetch_add(1, std::memory_order_relaxed);
    SessionRef ref = find_session(id);
    if (ref.index < 0) throw FIX::UnsupportedMessageType();
    const std::string& msg_type = text_of(message.getHeader(), TAG_MSG_TYPE);
    int64_t stall_ms = inject_stall_ms_.exchange(0);
    if (stall_ms > 0) usleep((useconds_t)(stall_ms * 1000));
    try {
        if (!ref.venue) {
            ClientState& client = *clients_[ref.index];
            if (msg_type.size() != 1) throw FIX::UnsupportedMessageType();
            switch (msg_type[0]) {
            case 'D': {
                std::lock_guard<std::mutex> lock(lock_);
                on_new_order(client, message, recv_ns, decode_started);
                return;
            }
            case 'F': {
                std::lock_guard<std::mutex> lock(lock_);
                on_cancel(client, message, recv_ns);
                return;
            }
            case 'G': {
                std::lock_guard<std::mutex> lock(lock_);
                on_replace(client, message, recv_ns);
                return;
            }
            case 'H': {
                std::lock_guard<std::mutex> lock(lock_);
                on_status(client, message);
                return;
            }
            default:
                throw FIX::UnsupportedMessageType();
            }
        }
        VenueState& venue = *venues_[ref.index];
        if (msg_type == "8") {
            std::lock_guard<std::mutex> lock(lock_);
            on_execution(venue, message, recv_ns);
            stages_[STAGE_RELAY].record(realtime_ns() - recv_ns);
        } else if (msg_type == "9") {
            std::lock_guard<std::mutex> lock(lock_);
            on_venue_cancel_reject(venue, message, recv_ns);
        } else if (msg_type == "W" || msg_type == "X") {
            std::lock_guard<std::mutex> lock(lock_);
            on_market_data(venue, message, msg_type == "X", recv_ns);
        } else if (msg_type == "j") {
            // Never answered with a reject of our own: a reject of a reject is how loops start.
            std::lock_guard<std::mutex> lock(lock_);
            on_venue_reject(venue, message, true, recv_ns);
        } else if (msg_type == "Y") {
            std::lock_guard<std::mutex> lock(lock_);
            alarm(FG_ALARM_VENUE_BUSINESS_REJECT,
                  "venue " + venue.config.name + " refused market data: " + text_of(message, TAG_TEXT));
        } else {
            throw FIX::UnsupportedMessageType();
        }
    } catch (FIX::FieldNotFound&) {
        throw;
    } catch (FIX::IncorrectDataFormat&) {
        throw;
    } catch (FIX::IncorrectTagValue&) {
        throw;
    } catch (FIX::UnsupportedMessageType&) {
        throw;
    } catch (std::exception& error) {
        counters_.callback_errors.fetch_add(1);
        std::lock_guard<std::mutex> lock(lock_);
        alarm(FG_ALARM_INTERNAL_ERROR, std::string("fromApp ") + msg_type + " failed: " + error.what());
        if (!ref.venue && msg_type == "D") {
            try {
                reject_new(*clients_[ref.index], message, CODE_INTERNAL_ERROR,
                           "the gateway could not process this order; nothing was sent", recv_ns, -1, -1, 0, false);
            } catch (std::exception&) {
            }
        }
    }
}

// -- NEW ORDERS -------------------------------------------------------------------------------------

std::string Engine::gateway_order_id(int64_t id) const { return config_.token + "-" + std::to_string(id); }

std::string Engine::next_exec_id() { return config_.token + "-E" + std::to_string(next_exec_id_++); }

std::string Engine::reject_text(int code, const std::string& sentence) const {
    const std::string& name = code >= 0 && code < (int)config_.reject_names.size() ? config_.reject_names[code] : EMPTY;
    return name + ": " + sentence;
}

std::string Engine::describe(int code, int instrument, int side, int ord_type, double qty, double price) {
    char buffer[512];
    buffer[0] = 0;
    if (fast_.describe != nullptr) fast_.describe(fast_.describer, code, instrument, side, ord_type, qty, price, buffer,
                                                  sizeof(buffer));
    return buffer;
}

void Engine::on_new_order(ClientState& client, const FIX::Message& message, int64_t recv_ns, int64_t decode_started) {
    counters_.received.fetch_add(1, std::memory_order_relaxed);
    const std::string* cl_ord_id = field(message, TAG_CL_ORD_ID);
    const std::string& symbol = text_of(message, TAG_SYMBOL);
    char side = char_of(message, TAG_SIDE);
    char ord_type = char_of(message, TAG_ORD_TYPE);
    const std::string* qty_text = field(message, TAG_ORDER_QTY);
    const std::string* price_text = field(message, TAG_PRICE);
    char tif = char_of(message, TAG_TIME_IN_FORCE, '0');
    const std::string& account = text_of(message, TAG_ACCOUNT);
    auto found = symbols_.find(symbol);
    int instrument = found == symbols_.end() ? -1 : found->second;
    int64_t qty_lots = -1;
    int64_t price_ticks = 0;
    if (instrument >= 0) {
        const InstrumentConfig& spec = config_.instruments[instrument];
        if (qty_text) qty_lots = units_of(*qty_text, spec.lot);
        if (ord_type == '2') price_ticks = price_text ? units_of(*price_text, spec.tick) : -1;
    }
    stages_[STAGE_DECODE].record(monotonic_ns() - decode_started);
    if (cl_ord_id == nullptr || cl_ord_id->empty()) {
        reject_new(client, message, CODE_INVALID_FIELD, "ClOrdID(11) is required", recv_ns, instrument, qty_lots,
                   price_ticks, false);
        return;
    }
    if (cl_ord_id->size() > MAX_ID_LENGTH || account.size() > MAX_ID_LENGTH) {
        reject_new(client, message, CODE_INVALID_FIELD,
                   "ClOrdID(11) and Account(1) may be at most " + std::to_string(MAX_ID_LENGTH) + " characters",
                   recv_ns, instrument, qty_lots, price_ticks, false);
        return;
    }
    if (client.used_ids.contains(hash_id(*cl_ord_id))) {
        reject_new(client, message, CODE_DUPLICATE_CL_ORD_ID, "duplicate ClOrdID " + *cl_ord_id, recv_ns, instrument,
                   qty_lots, price_ticks, false);
        return;
    }
    // The checks that need strings or sessions; the hot path does the rest.
    int code = CODE_OK;
    std::string text;
    VenueState* venue = instrument >= 0 ? venues_[config_.instruments[instrument].venue].get() : nullptr;
    if (fast_.risk_state(fast_.book) == RISK_KILLED) {
        code = CODE_KILL_SWITCH;
        text = "kill switch active: " + (risk_reason_.empty() ? std::string("no reason given") : risk_reason_);
    } else if (!accepting_.load(std::memory_order_relaxed)) {
        code = CODE_GATEWAY_CLOSED;
        text = closed_reason();
    } else if (!ring_.has_room(8)) {
        code = CODE_BUSY;
        text = "gateway busy: the event queue to the state thread is full";
    } else if (symbol.empty()) {
        code = CODE_INVALID_FIELD;
        text = "Symbol(55) is required";
    } else if (qty_text == nullptr) {
        code = CODE_INVALID_FIELD;
        text = "OrderQty(38) is required";
    } else if (ord_type == '2' && price_text == nullptr) {
        code = CODE_INVALID_PRICE;
        text = "a limit order needs Price(44)";
    } else if (!tif_supported(tif)) {
        code = CODE_INVALID_FIELD;
        text = std::string("TimeInForce(59) '") + tif + "' is not supported (0, 1, 3 or 4)";
    } else if (!killed_accounts_.empty() &&
               killed_accounts_.count(account.empty() ? client.config.name : account) != 0) {
        const std::string& owner = account.empty() ? client.config.name : account;
        code = CODE_CLIENT_KILLED;
        text = "kill switch active for account " + owner + ": " + killed_accounts_[owner];
    } else if (instrument >= 0 && !client.permitted[instrument]) {
        code = CODE_INSTRUMENT_NOT_PERMITTED;
        text = "instrument " + symbol + " is not permitted for " + client.config.name;
    } else if (venue != nullptr && !venue->logged_on.load(std::memory_order_acquire)) {
        code = CODE_VENUE_UNAVAILABLE;
        text = venue_down_text(*venue);
    } else if (venue != nullptr && venue->state.load(std::memory_order_relaxed) == FG_VENUE_REFUSED) {
        code = CODE_VENUE_UNAVAILABLE;
        text = "venue " + venue->config.name + " is not ready: " + venue->state_reason;
    } else if (instrument < 0) {
        code = CODE_UNKNOWN_INSTRUMENT;
        text = "unknown instrument " + symbol;
    } else if (fast_.venue_conforms != nullptr && !fast_.venue_conforms(fast_.book, venue->index, recv_ns)) {
        code = CODE_VENUE_RATE_LIMIT;
        text = "venue " + venue->config.name + " takes no more messages this instant (its message rate limit): "
               "the order was not sent";
    }
    int64_t order_id = 0;
    int64_t checks_started = monotonic_ns();
    if (code == CODE_OK) {
        code = fast_.check_new_order(fast_.book, client.index, instrument, side_number(side),
                                     ord_type_number(ord_type), qty_lots, price_ticks, recv_ns, &order_id);
        stages_[STAGE_CHECKS].record(monotonic_ns() - checks_started);
        if (code == CODE_KILL_SWITCH) {
            text = "kill switch active: " + (risk_reason_.empty() ? std::string("no reason given") : risk_reason_);
        } else if (code == CODE_CLIENT_KILLED) {
            text = "kill switch active for client " + client.config.name + ": " +
                   (client.kill_reason.empty() ? std::string("no reason given") : client.kill_reason);
        } else if (code != CODE_OK) {
            double qty = qty_text ? decimal_to_double(qty_text->data(), qty_text->size()) : __builtin_nan("");
            double price = ord_type == '2' && price_text ? decimal_to_double(price_text->data(), price_text->size())
                                                         : 0.0;
            text = describe(code, instrument, side_number(side), ord_type_number(ord_type), qty, price);
            if (code >= 0 && code < CODE_REASONS && !code_reasons_[code].empty()) text += ": " + code_reasons_[code];
        }
    }
    if (code != CODE_OK) {
        reject_new(client, message, code, text, recv_ns, instrument, qty_lots, price_ticks, true);
        return;
    }
    // Accepted: the book has reserved it; the order exists from here on.
    Order& order = orders_[order_id];
    order.id = order_id;
    order.session = client.index;
    order.instrument = instrument;
    order.venue = venue->index;
    order.side = side;
    order.ord_type = ord_type;
    order.tif = tif;
    order.qty_lots = qty_lots;
    order.price_ticks = ord_type == '2' ? price_ticks : 0;
    order.cl_ord_id = *cl_ord_id;
    order.account = account;
    order.venue_cl_ord_id = gateway_order_id(order_id);
    remember_client_id(order, *cl_ord_id);
    bool sent = false;
    try {
        int64_t before = inject_before_send_.load(std::memory_order_relaxed);
        if (before > 0) {
            inject_before_send_.store(before - 1);
            throw std::runtime_error("injected failure before the send");
        }
        fg_event event = order_event(FG_EVENT_ACCEPTED, order);
        event.recv_ns = recv_ns;
        copy_text(event.text_a, sizeof(event.text_a), order.cl_ord_id, false);
        copy_text(event.text_b, sizeof(event.text_b), order.account, false);
        copy_text(event.text_c, sizeof(event.text_c), order.venue_cl_ord_id, false);
        int64_t journal_started = monotonic_ns();
        write_ahead(event);
        int64_t encode_started = monotonic_ns();
        stages_[STAGE_JOURNAL].record(encode_started - journal_started);
        const InstrumentConfig& spec = config_.instruments[instrument];
        FIX::Message outgoing = new_message("D");
        outgoing.setField(TAG_CL_ORD_ID, order.venue_cl_ord_id);
        set(outgoing, TAG_ACCOUNT, order.account);
        outgoing.setField(TAG_SYMBOL, symbol);
        set_char(outgoing, TAG_SIDE, side);
        outgoing.setField(TAG_TRANSACT_TIME, utc_timestamp(recv_ns));
        outgoing.setField(TAG_ORDER_QTY, format_units(qty_lots, spec.lot));
        set_char(outgoing, TAG_ORD_TYPE, ord_type);
        if (ord_type == '2') outgoing.setField(TAG_PRICE, format_units(price_ticks, spec.tick));
        set_char(outgoing, TAG_TIME_IN_FORCE, tif);
        sent = send_to_venue(*venue, outgoing, order_id, 0);
        int64_t sent_ns = realtime_ns();
        stages_[STAGE_ENCODE_SEND].record(monotonic_ns() - encode_started);
        stages_[STAGE_INTERNAL].record(sent_ns - recv_ns);
        event.sent_ns = sent_ns;
        push(event);
        if (!sent) {
            // Never reached the venue: release it and say so.
            order.status = '8';
            release(order, FG_EVENT_VENUE_REJECTED, CODE_VENUE_UNAVAILABLE);
            counters_.rejected_by_code[CODE_VENUE_UNAVAILABLE].fetch_add(1, std::memory_order_relaxed);
            counters_.rejected.fetch_add(1, std::memory_order_relaxed);
            FIX::Message report = execution_report(order, '8', '8', order.cl_ord_id, EMPTY, next_exec_id());
            report.setField(TAG_TEXT, reject_text(CODE_VENUE_UNAVAILABLE, venue_down_text(*venue)));
            report.setField(TAG_ORD_REJ_REASON, ord_rej_reason(CODE_VENUE_UNAVAILABLE));
            send_to_client(client.index, report);
            finish(order);
            return;
        }
        counters_.accepted.fetch_add(1, std::memory_order_relaxed);
        int64_t injected = inject_after_send_.load(std::memory_order_relaxed);
        if (injected > 0) {
            inject_after_send_.store(injected - 1);
            throw std::runtime_error("injected failure after the send");
        }
    } catch (std::exception& error) {
        if (sent) {
            // The order is live at the venue: keep it, tell nobody "rejected", raise the alarm.
            alarm(FG_ALARM_ERROR_AFTER_SEND, "order " + gateway_order_id(order_id) +
                  " went to the venue, then the gateway failed: " + error.what(), order_id);
        } else {
            order.status = '8';
            release(order, FG_EVENT_VENUE_REJECTED, CODE_INTERNAL_ERROR);
            FIX::Message report = execution_report(order, '8', '8', order.cl_ord_id, EMPTY, next_exec_id());
            report.setField(TAG_TEXT, reject_text(CODE_INTERNAL_ERROR,
                                                  "the gateway could not process this order; nothing was sent"));
            report.setField(TAG_ORD_REJ_REASON, "99");
            send_to_client(client.index, report);
            finish(order);
            alarm(FG_ALARM_ERROR_BEFORE_SEND, "order " + gateway_order_id(order_id) +
                  " failed before the send and was released (the client was told): " + error.what(), order_id);
        }
    }
}

void Engine::reject_new(ClientState& client, const FIX::Message& message, int code, const std::string& text,
                        int64_t recv_ns, int instrument, int64_t qty_lots, int64_t price_ticks, bool remember) {
    counters_.rejected.fetch_add(1, std::memory_order_relaxed);
    counters_.rejected_by_code[code & 63].fetch_add(1, std::memory_order_relaxed);
    const std::string* cl_ord_id = field(message, TAG_CL_ORD_ID);
    char side = char_of(message, TAG_SIDE);
    char ord_type = char_of(message, TAG_ORD_TYPE);
    if (remember && cl_ord_id != nullptr) {
        client.used_ids.insert(hash_id(*cl_ord_id));
        fg_event event;
        memset(&event, 0, sizeof(event));
        event.kind = FG_EVENT_REJECTED;
        event.recv_ns = recv_ns;
        event.sent_ns = realtime_ns();
        event.instrument_id = instrument;
        event.session_id = (int16_t)client.index;
        event.venue_id = instrument >= 0 ? (int16_t)config_.instruments[instrument].venue : -1;
        event.side = (uint8_t)side_number(side);
        event.ord_type = (uint8_t)ord_type_number(ord_type);
        char tif = char_of(message, TAG_TIME_IN_FORCE, '0');
        event.tif = (uint8_t)(tif >= '0' && tif <= '9' ? tif - '0' : 0);
        event.qty_lots = qty_lots;
        event.price_ticks = price_ticks;
        event.code = (uint8_t)code;
        event.status = '8';
        copy_text(event.text_a, sizeof(event.text_a), *cl_ord_id, false);
        copy_text(event.text_b, sizeof(event.text_b), text_of(message, TAG_ACCOUNT), false);
        if (instrument < 0) copy_text(event.text_c, sizeof(event.text_c), text_of(message, TAG_SYMBOL), false);
        push(event);
    }
    FIX::Message report = new_message("8");
    report.setField(TAG_ORDER_ID, "NONE");
    set(report, TAG_CL_ORD_ID, cl_ord_id ? *cl_ord_id : std::string("NONE"));
    report.setField(TAG_EXEC_ID, next_exec_id());
    report.setField(TAG_EXEC_TYPE, "8");
    report.setField(TAG_ORD_STATUS, "8");
    report.setField(TAG_ORD_REJ_REASON, ord_rej_reason(code));
    report.setField(TAG_SYMBOL, text_of(message, TAG_SYMBOL).empty() ? std::string("NONE") : text_of(message, TAG_SYMBOL));
    report.setField(TAG_SIDE, side ? std::string(1, side) : std::string("1"));
    set(report, TAG_ORDER_QTY, text_of(message, TAG_ORDER_QTY));
    set_char(report, TAG_ORD_TYPE, ord_type);
    set(report, TAG_PRICE, text_of(message, TAG_PRICE));
    report.setField(TAG_LEAVES_QTY, "0");
    report.setField(TAG_CUM_QTY, "0");
    report.setField(TAG_AVG_PX, "0");
    report.setField(TAG_TRANSACT_TIME, utc_timestamp(realtime_ns()));
    report.setField(TAG_TEXT, reject_text(code, text));
    send_to_client(client.index, report);
}

// -- CANCEL, REPLACE, STATUS ------------------------------------------------------------------------

void Engine::cancel_reject(ClientState& client, const FIX::Message& message, const Order* order, char response_to,
                           const char* reason, const std::string& text) {
    FIX::Message reject = new_message("9");
    reject.setField(TAG_ORDER_ID, order ? gateway_order_id(order->id) : std::string("NONE"));
    reject.setField(TAG_CL_ORD_ID, text_of(message, TAG_CL_ORD_ID).empty() ? std::string("NONE")
                                                                          : text_of(message, TAG_CL_ORD_ID));
    const std::string& orig = text_of(message, TAG_ORIG_CL_ORD_ID);
    reject.setField(TAG_ORIG_CL_ORD_ID, orig.empty() ? std::string("NONE") : orig);
    char status = '8';
    if (order != nullptr) {
        status = std::find(order->replaced_ids.begin(), order->replaced_ids.end(), orig) != order->replaced_ids.end()
                     ? '5' : visible_status(*order);
    }
    reject.setField(TAG_ORD_STATUS, std::string(1, status));
    reject.setField(TAG_CXL_REJ_RESPONSE_TO, std::string(1, response_to));
    reject.setField(TAG_CXL_REJ_REASON, reason);
    reject.setField(TAG_TEXT, text);
    send_to_client(client.index, reject);
}

Order* Engine::find_live(ClientState& client, const FIX::Message& message, char response_to) {
    const std::string& cl_ord_id = text_of(message, TAG_CL_ORD_ID);
    const std::string& orig = text_of(message, TAG_ORIG_CL_ORD_ID);
    auto known = client.order_ids.find(orig);
    Order* order = known == client.order_ids.end() ? nullptr : find_order(known->second);
    if (cl_ord_id.empty() || cl_ord_id.size() > MAX_ID_LENGTH) {
        cancel_reject(client, message, order, response_to, "99",
                      "ClOrdID(11) is required, at most " + std::to_string(MAX_ID_LENGTH) + " characters");
        return nullptr;
    }
    if (client.used_ids.contains(hash_id(cl_ord_id))) {
        cancel_reject(client, message, order, response_to, "6", "duplicate ClOrdID " + cl_ord_id);
        return nullptr;
    }
    if (order == nullptr) {
        if (known != client.order_ids.end() || client.used_ids.contains(hash_id(orig)))
            cancel_reject(client, message, nullptr, response_to, "0", "order " + orig + " is no longer open");
        else
            cancel_reject(client, message, nullptr, response_to, "1", "unknown order " + orig);
        return nullptr;
    }
    if (!order->in_book || terminal(order->status)) {
        cancel_reject(client, message, order, response_to, "0", "order " + orig + " is no longer open");
        return nullptr;
    }
    if (order->cancel.kind != REQUEST_NONE || order->replace.kind != REQUEST_NONE) {
        cancel_reject(client, message, order, response_to, "3",
                      "a cancel or replace of " + orig + " is already pending");
        return nullptr;
    }
    VenueState& venue = *venues_[order->venue];
    if (!venue.logged_on.load()) {
        cancel_reject(client, message, order, response_to, "99", venue_down_text(venue));
        return nullptr;
    }
    if (!ring_.has_room(8)) {
        cancel_reject(client, message, order, response_to, "99",
                      "gateway busy: the event queue to the state thread is full");
        return nullptr;
    }
    return order;
}

void Engine::on_cancel(ClientState& client, const FIX::Message& message, int64_t recv_ns) {
    Order* order = find_live(client, message, '1');
    if (order == nullptr) return;
    const std::string& cl_ord_id = text_of(message, TAG_CL_ORD_ID);
    remember_client_id(*order, cl_ord_id);
    if (!send_cancel(*order, cl_ord_id, order->cl_ord_id, 0, EMPTY, recv_ns)) {
        cancel_reject(client, message, order, '1', "99", venue_down_text(*venues_[order->venue]));
    }
}

bool Engine::send_cancel(Order& order, const std::string& client_cl_ord_id, const std::string& orig_client_cl_ord_id,
                         uint8_t reason, const std::string& text, int64_t recv_ns) {
    VenueState& venue = *venues_[order.venue];
    const InstrumentConfig& spec = config_.instruments[order.instrument];
    Request& request = order.cancel;
    request.kind = REQUEST_CANCEL;
    request.number = ++order.next_request;
    request.client_cl_ord_id = client_cl_ord_id;
    request.orig_client_cl_ord_id = orig_client_cl_ord_id;
    request.reason = reason;
    request.text = text;
    fg_event event = order_event(FG_EVENT_CANCEL_REQUESTED, order);
    event.recv_ns = recv_ns;
    event.aux = request.number;
    event.code = reason;
    if (reason) event.flags |= FG_FLAG_GATEWAY;
    copy_text(event.text_a, sizeof(event.text_a), client_cl_ord_id, false);
    copy_text(event.text_b, sizeof(event.text_b), orig_client_cl_ord_id, false);
    if (reason) copy_text(event.text_c, sizeof(event.text_c), text, false);
    write_ahead(event);
    std::string root = order.venue_cl_ord_id.substr(0, order.venue_cl_ord_id.find('.'));
    FIX::Message outgoing = new_message("F");
    outgoing.setField(TAG_ORIG_CL_ORD_ID, order.venue_cl_ord_id);
    set(outgoing, TAG_ORDER_ID, order.venue_order_id);
    outgoing.setField(TAG_CL_ORD_ID, root + "." + std::to_string(request.number));
    outgoing.setField(TAG_SYMBOL, spec.symbol);
    set_char(outgoing, TAG_SIDE, order.side);
    outgoing.setField(TAG_TRANSACT_TIME, utc_timestamp(realtime_ns()));
    outgoing.setField(TAG_ORDER_QTY, format_units(order.qty_lots, spec.lot));
    bool sent = send_to_venue(venue, outgoing, order.id, request.number);
    event.sent_ns = realtime_ns();
    push(event);
    if (!sent) {
        fg_event rejected = order_event(FG_EVENT_CANCEL_REJECTED, order);
        rejected.aux = request.number;
        push(rejected);
        order.cancel = Request();
        return false;
    }
    counters_.cancels.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void Engine::on_replace(ClientState& client, const FIX::Message& message, int64_t recv_ns) {
    Order* found = find_live(client, message, '2');
    if (found == nullptr) return;
    Order& order = *found;
    const InstrumentConfig& spec = config_.instruments[order.instrument];
    char ord_type = char_of(message, TAG_ORD_TYPE);
    if (ord_type != order.ord_type || char_of(message, TAG_SIDE) != order.side ||
        text_of(message, TAG_SYMBOL) != spec.symbol) {
        cancel_reject(client, message, &order, '2', "99",
                      "a replace may change quantity and price only, not side, symbol or order type");
        return;
    }
    if (!accepting_.load(std::memory_order_relaxed)) {      // draining or stopping: cancels only
        counters_.rejected_by_code[CODE_GATEWAY_CLOSED].fetch_add(1, std::memory_order_relaxed);
        cancel_reject(client, message, &order, '2', "99",
                      "GATEWAY_CLOSED: " + closed_reason() + "; cancels are still taken");
        return;
    }
    const std::string& owner = order.account.empty() ? client.config.name : order.account;
    if (!killed_accounts_.empty() && killed_accounts_.count(owner) != 0) {
        counters_.rejected_by_code[CODE_CLIENT_KILLED].fetch_add(1, std::memory_order_relaxed);
        cancel_reject(client, message, &order, '2', "99",
                      "CLIENT_KILLED: kill switch active for account " + owner + ": " + killed_accounts_[owner]);
        return;
    }
    VenueState& replace_venue = *venues_[order.venue];
    if (fast_.venue_conforms != nullptr && !fast_.venue_conforms(fast_.book, replace_venue.index, recv_ns)) {
        counters_.rejected_by_code[CODE_VENUE_RATE_LIMIT].fetch_add(1, std::memory_order_relaxed);
        cancel_reject(client, message, &order, '2', "99",
                      "VENUE_RATE_LIMIT: venue " + replace_venue.config.name +
                      " takes no more messages this instant (its message rate limit): the replace was not sent");
        return;
    }
    const std::string* qty_text = field(message, TAG_ORDER_QTY);
    const std::string* price_text = field(message, TAG_PRICE);
    int64_t qty_lots = qty_text ? units_of(*qty_text, spec.lot) : -1;
    int64_t price_ticks = 0;
    if (order.ord_type == '2') price_ticks = price_text ? units_of(*price_text, spec.tick) : -1;
    int code = fast_.check_replace(fast_.book, order.id, qty_lots, price_ticks, recv_ns);
    if (code != CODE_OK) {
        counters_.rejected_by_code[code & 63].fetch_add(1, std::memory_order_relaxed);
        double qty = qty_text ? decimal_to_double(qty_text->data(), qty_text->size()) : __builtin_nan("");
        double price = order.ord_type == '2' && price_text ? decimal_to_double(price_text->data(), price_text->size())
                                                           : 0.0;
        std::string sentence = code == CODE_KILL_SWITCH
            ? "kill switch active: " + (risk_reason_.empty() ? std::string("no reason given") : risk_reason_)
            : code == CODE_CLIENT_KILLED
            ? "kill switch active for client " + client.config.name + ": " +
                  (client.kill_reason.empty() ? std::string("no reason given") : client.kill_reason)
            : describe(code, order.instrument, side_number(order.side), ord_type_number(order.ord_type), qty, price);
        if (code >= 0 && code < CODE_REASONS && !code_reasons_[code].empty()) sentence += ": " + code_reasons_[code];
        cancel_reject(client, message, &order, '2', "99", reject_text(code, sentence));
        return;
    }
    const std::string& cl_ord_id = text_of(message, TAG_CL_ORD_ID);
    remember_client_id(order, cl_ord_id);
    Request& request = order.replace;
    request.kind = REQUEST_REPLACE;
    request.number = ++order.next_request;
    request.client_cl_ord_id = cl_ord_id;
    request.orig_client_cl_ord_id = order.cl_ord_id;
    request.qty_lots = qty_lots;
    request.price_ticks = price_ticks;
    fg_event event = order_event(FG_EVENT_REPLACE_ACCEPTED, order);
    event.recv_ns = recv_ns;
    event.aux = request.number;
    event.qty_lots = qty_lots;
    event.price_ticks = price_ticks;
    copy_text(event.text_a, sizeof(event.text_a), cl_ord_id, false);
    copy_text(event.text_b, sizeof(event.text_b), order.cl_ord_id, false);
    write_ahead(event);
    std::string root = order.venue_cl_ord_id.substr(0, order.venue_cl_ord_id.find('.'));
    FIX::Message outgoing = new_message("G");
    outgoing.setField(TAG_ORIG_CL_ORD_ID, order.venue_cl_ord_id);
    set(outgoing, TAG_ORDER_ID, order.venue_order_id);
    outgoing.setField(TAG_CL_ORD_ID, root + "." + std::to_string(request.number));
    outgoing.setField(TAG_SYMBOL, spec.symbol);
    set_char(outgoing, TAG_SIDE, order.side);
    outgoing.setField(TAG_TRANSACT_TIME, utc_timestamp(realtime_ns()));
    outgoing.setField(TAG_ORDER_QTY, format_units(qty_lots, spec.lot));
    set_char(outgoing, TAG_ORD_TYPE, order.ord_type);
    if (order.ord_type == '2') outgoing.setField(TAG_PRICE, format_units(price_ticks, spec.tick));
    set_char(outgoing, TAG_TIME_IN_FORCE, order.tif);
    bool sent = send_to_venue(*venues_[order.venue], outgoing, order.id, request.number);
    event.sent_ns = realtime_ns();
    push(event);
    if (!sent) {
        fast_.on_replace_rejected(fast_.book, order.id);
        fg_event rejected = order_event(FG_EVENT_REPLACE_REJECTED, order);
        rejected.aux = request.number;
        push(rejected);
        order.replace = Request();
        cancel_reject(client, message, &order, '2', "99", venue_down_text(*venues_[order.venue]));
        return;
    }
    counters_.replaces.fetch_add(1, std::memory_order_relaxed);
}

void Engine::on_status(ClientState& client, const FIX::Message& message) {
    counters_.status_requests.fetch_add(1, std::memory_order_relaxed);
    const std::string& cl_ord_id = text_of(message, TAG_CL_ORD_ID);
    auto known = client.order_ids.find(cl_ord_id);
    Order* order = known == client.order_ids.end() ? nullptr : find_order(known->second);
    if (order == nullptr) {
        FIX::Message report = new_message("8");
        const std::string& order_id = text_of(message, TAG_ORDER_ID);
        report.setField(TAG_ORDER_ID, order_id.empty() ? std::string("NONE") : order_id);
        report.setField(TAG_CL_ORD_ID, cl_ord_id.empty() ? std::string("NONE") : cl_ord_id);
        report.setField(TAG_EXEC_ID, next_exec_id());
        report.setField(TAG_EXEC_TYPE, "I");
        report.setField(TAG_ORD_STATUS, "8");
        report.setField(TAG_ORD_REJ_REASON, "5");
        report.setField(TAG_SYMBOL, text_of(message, TAG_SYMBOL).empty() ? std::string("NONE")
                                                                         : text_of(message, TAG_SYMBOL));
        set_char(report, TAG_SIDE, char_of(message, TAG_SIDE, '1'));
        report.setField(TAG_LEAVES_QTY, "0");
        report.setField(TAG_CUM_QTY, "0");
        report.setField(TAG_AVG_PX, "0");
        report.setField(TAG_TEXT, "unknown order " + cl_ord_id);
        send_to_client(client.index, report);
        return;
    }
    char status = std::find(order->replaced_ids.begin(), order->replaced_ids.end(), cl_ord_id) !=
                          order->replaced_ids.end() ? '5' : visible_status(*order);
    FIX::Message report = execution_report(*order, 'I', status, cl_ord_id, EMPTY, next_exec_id());
    send_to_client(client.index, report);
}

// -- VENUE REPORTS ----------------------------------------------------------------------------------

Order* Engine::find_order(int64_t id) {
    auto found = orders_.find(id);
    return found == orders_.end() ? nullptr : &found->second;
}

// "<token>-<id>" or "<token>-<id>.<request>": the order it names, if held, and the request number.
Order* Engine::order_of_venue_id(const std::string& venue_cl_ord_id, int64_t& request) {
    request = 0;
    size_t dash = venue_cl_ord_id.rfind('-');
    if (dash == std::string::npos || dash + 1 >= venue_cl_ord_id.size()) return nullptr;
    int64_t id = 0;
    size_t at = dash + 1;
    for (; at < venue_cl_ord_id.size() && venue_cl_ord_id[at] != '.'; ++at) {
        char c = venue_cl_ord_id[at];
        if (c < '0' || c > '9' || id > (INT64_MAX - 9) / 10) return nullptr;
        id = id * 10 + (c - '0');
    }
    if (at < venue_cl_ord_id.size()) {
        for (++at; at < venue_cl_ord_id.size(); ++at) {
            char c = venue_cl_ord_id[at];
            if (c < '0' || c > '9' || request > (INT64_MAX - 9) / 10) return nullptr;
            request = request * 10 + (c - '0');
        }
    }
    Order* order = find_order(id);
    if (order == nullptr) return nullptr;
    std::string root = order->venue_cl_ord_id.substr(0, order->venue_cl_ord_id.find('.'));
    if (venue_cl_ord_id.compare(0, root.size(), root) != 0) return nullptr;     // another run's id
    return order;
}

char Engine::visible_status(const Order& order) const {
    if (!terminal(order.status)) {
        if (order.cancel.kind != REQUEST_NONE) return '6';
        if (order.replace.kind != REQUEST_NONE) return 'E';
    }
    return order.status;
}

FIX::Message Engine::execution_report(const Order& order, char exec_type, char ord_status, const std::string& cl_ord_id,
                                      const std::string& orig_cl_ord_id, const std::string& exec_id) {
    const InstrumentConfig& spec = config_.instruments[order.instrument];
    FIX::Message report = new_message("8");
    report.setField(TAG_ORDER_ID, gateway_order_id(order.id));
    report.setField(TAG_CL_ORD_ID, cl_ord_id);
    set(report, TAG_ORIG_CL_ORD_ID, orig_cl_ord_id);
    report.setField(TAG_EXEC_ID, exec_id);
    report.setField(TAG_EXEC_TYPE, std::string(1, exec_type));
    report.setField(TAG_ORD_STATUS, std::string(1, ord_status));
    set(report, TAG_ACCOUNT, order.account);
    report.setField(TAG_SYMBOL, spec.symbol);
    set_char(report, TAG_SIDE, order.side);
    report.setField(TAG_ORDER_QTY, format_units(order.qty_lots, spec.lot));
    set_char(report, TAG_ORD_TYPE, order.ord_type);
    if (order.ord_type == '2') report.setField(TAG_PRICE, format_units(order.price_ticks, spec.tick));
    set_char(report, TAG_TIME_IN_FORCE, order.tif);
    int64_t leaves = terminal(ord_status) || terminal(order.status) ? 0 : order.qty_lots - order.cum_lots;
    report.setField(TAG_LEAVES_QTY, format_units(leaves > 0 ? leaves : 0, spec.lot));
    report.setField(TAG_CUM_QTY, format_units(order.cum_lots, spec.lot));
    report.setField(TAG_AVG_PX, order.cum_lots ? format_ratio(order.cost, order.cum_lots, spec.tick, 6) : std::string("0"));
    report.setField(TAG_TRANSACT_TIME, utc_timestamp(realtime_ns()));
    return report;
}

// Why a venue takes nothing now (called with the lock held): down, or outside its session.
std::string Engine::venue_down_text(const VenueState& venue) const {
    if (!venue.closed_reason.empty()) return "venue " + venue.config.name + " is " + venue.closed_reason;
    return "venue " + venue.config.name + " not logged on";
}

void Engine::set_venue_closed_reason(int index, const std::string& reason) {
    std::lock_guard<std::mutex> lock(lock_);
    if (index >= 0 && index < (int)venues_.size()) venues_[index]->closed_reason = reason;
}

void Engine::relay_to_client(Order& order, FIX::Message& report) {
    send_to_client(order.session, report);
}

// A report told again, its venue report having come again after a restart: PossResend(97)=Y, so that
// a client that had it already knows it by its ExecID.
void Engine::relay_resent(Order& order, FIX::Message& report) {
    report.getHeader().setField(TAG_POSS_RESEND, "Y");
    relay_to_client(order, report);
}

// The end of a finished order told again, in the form of a gateway-initiated report: OrigClOrdID is
// the client's ClOrdID, whatever request ended it.
void Engine::relay_end_again(Order& order, char exec_type, const std::string& client_exec_id,
                             const std::string& text) {
    FIX::Message report = execution_report(order, exec_type, order.status, order.cl_ord_id,
                                           exec_type == '8' ? EMPTY : order.cl_ord_id, client_exec_id);
    set(report, TAG_TEXT, text);
    relay_resent(order, report);
}

void Engine::release(Order& order, int event_kind, int code) {
    if (order.in_book) {
        fast_.on_canceled(fast_.book, order.id);
        order.in_book = false;
    }
    fg_event event = order_event((uint8_t)event_kind, order);
    event.code = (uint8_t)code;
    push(event);
}

void Engine::remember_client_id(Order& order, const std::string& cl_ord_id) {
    ClientState& client = *clients_[order.session];
    client.used_ids.insert(hash_id(cl_ord_id));
    client.order_ids[cl_ord_id] = order.id;
    order.client_ids.push_back(cl_ord_id);
}

void Engine::finish(Order& order) {
    order.in_book = false;
    order.cancel = Request();
    order.replace = Request();
    if (order.finished) return;                 // a late overfill: queued to be forgotten already
    order.finished = true;
    finished_.push_back(order.id);
    forget_finished();
}

// Forget the oldest finished orders beyond the retention, but not one whose status request to the
// venue is still unanswered (its answer must find it): that one goes to the back of the queue.
void Engine::forget_finished() {
    const int64_t retention = std::max<int64_t>(config_.retention_orders, 1);
    size_t budget = finished_.size();
    while ((int64_t)finished_.size() > retention && budget-- > 0) {
        int64_t id = finished_.front();
        finished_.pop_front();
        auto found = orders_.find(id);
        if (found == orders_.end() || found->second.in_book) continue;
        if (found->second.reconcile_pending > 0) {
            finished_.push_back(id);
            continue;
        }
        Order& order = found->second;
        if (order.session >= 0 && order.session < (int)clients_.size()) {
            ClientState& client = *clients_[order.session];
            for (const std::string& id_text : order.client_ids) {
                auto known = client.order_ids.find(id_text);
                if (known != client.order_ids.end() && known->second == order.id) client.order_ids.erase(known);
            }
        }
        orders_.erase(found);
    }
}

void Engine::on_execution(VenueState& venue, const FIX::Message& message, int64_t recv_ns) {
    char exec_type = char_of(message, TAG_EXEC_TYPE);
    if (exec_type == 'I') {
        on_status_report(venue, message, recv_ns);
        return;
    }
    const std::string& cl_ord_id = text_of(message, TAG_CL_ORD_ID);
    int64_t request = 0;
    Order* found = order_of_venue_id(cl_ord_id, request);
    if (found == nullptr) {
        const std::string* orig = field(message, TAG_ORIG_CL_ORD_ID);
        if (orig != nullptr) found = order_of_venue_id(*orig, request);
    }
    if (found == nullptr) {
        bool fill = exec_type == 'F' || exec_type == '1' || exec_type == '2' || exec_type == 'H' || exec_type == 'G';
        if (fill && seen_exec_ids_.contains(hash_id(stored_id(text_of(message, TAG_EXEC_ID), FG_TEXT_A)))) {
            // A fill booked already, sent again (a resend after a restart) for an order since forgotten.
            counters_.duplicate_fills.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        int64_t count = counters_.unknown_venue_reports.fetch_add(1) + 1;
        if (fill) {
            // Shares changed hands that no order here accounts for: the positions are no longer the
            // venue's, which is fatal (the kill switch trips on it).
            alarm(FG_ALARM_UNKNOWN_FILL, "venue " + venue.config.name +
                  (exec_type == 'H' ? " busted " : exec_type == 'G' ? " corrected to " : " filled ") +
                  text_of(message, TAG_LAST_QTY) +
                  " " + text_of(message, TAG_SYMBOL) + " at " + text_of(message, TAG_LAST_PX) +
                  " on unknown ClOrdID " + cl_ord_id + " (ExecID " + text_of(message, TAG_EXEC_ID) +
                  "): not booked");
        } else if ((count & (count - 1)) == 0) {     // 1, 2, 4, 8, ...: said, never a flood
            alarm(FG_ALARM_UNKNOWN_VENUE_REPORT, "venue " + venue.config.name + " reported on unknown ClOrdID " +
                  cl_ord_id + " (ExecType " + std::string(1, exec_type) + "), " + std::to_string(count) + " so far");
        }
        return;
    }
    Order& order = *found;
    const InstrumentConfig& spec = config_.instruments[order.instrument];
    // A report the venue sends again (a resend after a restart) whose effect is booked already: the
    // gateway wrote it ahead but fell before QuickFIX counted the venue's message, so the client's
    // report may never have gone out. It is relayed again, marked PossResend, and booked nowhere.
    const bool resent = char_of(message.getHeader(), TAG_POSS_DUP_FLAG) == 'Y';
    const std::string& venue_order_id = text_of(message, TAG_ORDER_ID);
    if (!venue_order_id.empty() && venue_order_id != "NONE") order.venue_order_id = venue_order_id;
    char ord_status = char_of(message, TAG_ORD_STATUS, '0');
    const std::string& exec_id = text_of(message, TAG_EXEC_ID);
    const std::string client_exec_id = venue.config.name + "-" + exec_id;
    const std::string& venue_text = text_of(message, TAG_TEXT);
    std::string report_cl = order.cl_ord_id;
    std::string report_orig;
    switch (exec_type) {
    case '0': {
        if (!order.acked) {
            order.acked = true;
            if (order.in_book) fast_.on_acked(fast_.book, order.id);
            if (order.status == 'A') order.status = '0';
            fg_event event = order_event(FG_EVENT_ACKED, order);
            event.recv_ns = recv_ns;
            copy_text(event.text_c, sizeof(event.text_c), order.venue_order_id, true);
            push(event);
        }
        break;
    }
    case 'F':
    case '1':
    case '2': {
        int64_t lots = units_of(text_of(message, TAG_LAST_QTY), spec.lot);
        int64_t ticks = units_of(text_of(message, TAG_LAST_PX), spec.tick);
        std::string stored = stored_id(exec_id, FG_TEXT_A);
        int64_t venue_cum = units_of(text_of(message, TAG_CUM_QTY), spec.lot);
        bool seen = seen_exec_ids_.contains(hash_id(stored));
        if (seen) {
            // This very fill was booked already (the venue resent it after a restart): never booked
            // twice, but relayed again under the same ExecID, since the client may not have it yet.
            counters_.duplicate_fills.fetch_add(1, std::memory_order_relaxed);
            FIX::Message report = execution_report(order, 'F', ord_status, order.cl_ord_id, EMPTY, client_exec_id);
            if (lots > 0) report.setField(TAG_LAST_QTY, format_units(lots, spec.lot));
            if (ticks > 0) report.setField(TAG_LAST_PX, format_units(ticks, spec.tick));
            relay_resent(order, report);
            return;
        }
        if (venue_cum > 0 && venue_cum <= order.cum_lots) {
            // Its quantity was booked already under another ExecID (learnt by reconciliation while
            // the venue's own report was still to come): the client has a report for it.
            counters_.duplicate_fills.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        if (lots <= 0) {
            // Not a whole number of lots: the book cannot hold it, so nothing books it and the
            // alarm says the position is no longer what the venue says.
            alarm(FG_ALARM_FILL_OFF_LOT, "venue " + venue.config.name + " filled " + text_of(message, TAG_LAST_QTY) +
                  " of order " + gateway_order_id(order.id) + ", not a whole number of lots of " +
                  format_units(1, spec.lot) + " for " + spec.symbol + ": not booked", order.id);
            seen_exec_ids_.insert(hash_id(stored));
            FIX::Message report = execution_report(order, 'F', ord_status, order.cl_ord_id, EMPTY, client_exec_id);
            set(report, TAG_LAST_QTY, text_of(message, TAG_LAST_QTY));
            set(report, TAG_LAST_PX, text_of(message, TAG_LAST_PX));
            report.setField(TAG_TEXT, "fill of " + text_of(message, TAG_LAST_QTY) +
                            " is off the lot grid: not booked by the gateway");
            relay_to_client(order, report);
            return;
        }
        if (ticks <= 0) {
            int64_t mantissa;
            int scale;
            const std::string& px = text_of(message, TAG_LAST_PX);
            if (parse_decimal(px, mantissa, scale) && mantissa > 0) {
                ticks = round_ratio((wide)mantissa * power_of_ten(spec.tick.scale),
                                    (wide)spec.tick.mantissa * power_of_ten(scale));
            }
            if (ticks <= 0) ticks = order.price_ticks > 0 ? order.price_ticks : 1;
            alarm(FG_ALARM_FILL_PRICE_OFF_TICK, "venue " + venue.config.name + " filled order " +
                  gateway_order_id(order.id) + " at " + px + ", off the tick " + format_units(1, spec.tick) +
                  ": booked at " + format_units(ticks, spec.tick), order.id);
        }
        book_fill(venue, order, lots, ticks, stored, 0, recv_ns, client_exec_id, ord_status, venue_text);
        return;
    }
    case '4':
    case 'C':
    case '3': {
        if (order.finished) {                  // closed already (by reconciliation, or a report before)
            counters_.late_venue_reports.fetch_add(1, std::memory_order_relaxed);
            if (resent && order.status == exec_type) relay_end_again(order, exec_type, client_exec_id, venue_text);
            return;
        }
        if (request > 0 && order.cancel.kind == REQUEST_CANCEL && request == order.cancel.number) {
            report_cl = order.cancel.client_cl_ord_id.empty() ? order.cl_ord_id : order.cancel.client_cl_ord_id;
            report_orig = order.cancel.orig_client_cl_ord_id;
        }
        int64_t answered = order.cancel.kind == REQUEST_CANCEL ? order.cancel.number : 0;
        std::string gateway_text = order.cancel.reason ? order.cancel.text : EMPTY;
        if (order.in_book) {
            fast_.on_canceled(fast_.book, order.id);
            order.in_book = false;
        }
        order.status = exec_type == '4' ? '4' : exec_type;
        uint8_t kind = exec_type == '4' ? FG_EVENT_CANCELED : exec_type == 'C' ? FG_EVENT_EXPIRED : FG_EVENT_DONE_FOR_DAY;
        fg_event event = order_event(kind, order);
        event.recv_ns = recv_ns;
        event.aux = answered;
        push(event);
        FIX::Message report = execution_report(order, exec_type, ord_status, report_cl, report_orig, client_exec_id);
        if (!gateway_text.empty()) report.setField(TAG_TEXT, "cancelled by the gateway: " + gateway_text);
        else set(report, TAG_TEXT, venue_text);
        relay_to_client(order, report);
        finish(order);
        return;
    }
    case '5': {
        if (resent && order.replace.kind == REQUEST_NONE && cl_ord_id == order.venue_cl_ord_id &&
            !order.replaced_ids.empty()) {
            // This replace took effect before the restart: the client hears of it again.
            FIX::Message report = execution_report(order, '5', ord_status, order.cl_ord_id, order.replaced_ids.back(),
                                                   client_exec_id);
            set(report, TAG_TEXT, venue_text);
            relay_resent(order, report);
            return;
        }
        if (order.replace.kind != REQUEST_REPLACE || (request > 0 && request != order.replace.number)) {
            alarm(FG_ALARM_UNKNOWN_VENUE_REPORT, "venue " + venue.config.name + " replaced order " +
                  gateway_order_id(order.id) + " without a pending replace", order.id);
            return;
        }
        if (order.in_book) fast_.on_replaced(fast_.book, order.id);
        Request replace = order.replace;
        order.replace = Request();
        order.qty_lots = replace.qty_lots;
        if (order.ord_type == '2') order.price_ticks = replace.price_ticks;
        order.replaced_ids.push_back(order.cl_ord_id);
        report_orig = order.cl_ord_id;
        order.cl_ord_id = replace.client_cl_ord_id;
        report_cl = order.cl_ord_id;
        order.venue_cl_ord_id = cl_ord_id;
        if (order.status == 'A') order.status = '0';
        fg_event event = order_event(FG_EVENT_REPLACED, order);
        event.recv_ns = recv_ns;
        event.aux = replace.number;
        push(event);
        FIX::Message report = execution_report(order, '5', ord_status, report_cl, report_orig, client_exec_id);
        set(report, TAG_TEXT, venue_text);
        relay_to_client(order, report);
        return;
    }
    case '8': {
        if (request > 0) {
            // A venue that answers a cancel or replace with an ExecutionReport reject.
            if (order.replace.kind == REQUEST_REPLACE && request == order.replace.number)
                refuse_request(order, REQUEST_REPLACE, 0, "99", venue_text, recv_ns);
            else if (order.cancel.kind == REQUEST_CANCEL && request == order.cancel.number)
                refuse_request(order, REQUEST_CANCEL, 0, "99", venue_text, recv_ns);
            return;
        }
        if (order.finished) {
            counters_.late_venue_reports.fetch_add(1, std::memory_order_relaxed);
            if (resent && order.status == '8') relay_end_again(order, '8', client_exec_id, venue_text);
            return;
        }
        if (order.in_book) {
            fast_.on_canceled(fast_.book, order.id);
            order.in_book = false;
        }
        order.status = '8';
        fg_event event = order_event(FG_EVENT_VENUE_REJECTED, order);
        event.recv_ns = recv_ns;
        copy_text(event.text_a, sizeof(event.text_a), venue_text, false);
        push(event);
        FIX::Message report = execution_report(order, '8', '8', order.cl_ord_id, EMPTY, client_exec_id);
        set(report, TAG_TEXT, venue_text);
        set(report, TAG_ORD_REJ_REASON, text_of(message, TAG_ORD_REJ_REASON));
        relay_to_client(order, report);
        finish(order);
        return;
    }
    case 'H':
    case 'G':
        on_trade_correction(venue, order, message, exec_type, ord_status, recv_ns);
        return;
    case 'D':
        on_restatement(venue, order, message, ord_status, recv_ns);
        return;
    case '6':
    case 'E': {
        const Request& pending = exec_type == '6' ? order.cancel : order.replace;
        if (pending.kind != REQUEST_NONE && request == pending.number) {
            report_cl = pending.client_cl_ord_id.empty() ? order.cl_ord_id : pending.client_cl_ord_id;
            report_orig = pending.orig_client_cl_ord_id;
            if (pending.client_cl_ord_id.empty()) return;     // the gateway's own cancel: nothing to say yet
        }
        break;
    }
    default:
        break;
    }
    FIX::Message report = execution_report(order, exec_type, ord_status, report_cl, report_orig, client_exec_id);
    set(report, TAG_TEXT, venue_text);
    relay_to_client(order, report);
}

void Engine::book_fill(VenueState& venue, Order& order, int64_t lots, int64_t ticks, const std::string& venue_exec_id,
                       uint8_t flags, int64_t recv_ns, const std::string& client_exec_id, char ord_status,
                       const std::string& text) {
    const InstrumentConfig& spec = config_.instruments[order.instrument];
    int code = order.in_book ? fast_.on_filled(fast_.book, order.id, lots, ticks)
                             : fast_.on_loose_fill(fast_.book, order.instrument, side_number(order.side), lots, ticks);
    if (code == CODE_OVERFILL) {
        alarm(FG_ALARM_OVERFILL, "venue " + venue.config.name + " filled " + format_units(lots, spec.lot) +
              " of order " + gateway_order_id(order.id) + " with " +
              format_units(order.qty_lots - order.cum_lots, spec.lot) + " open: booked", order.id);
    }
    seen_exec_ids_.insert(hash_id(venue_exec_id));
    order.fills.push_back(FillRecord{venue_exec_id, lots, ticks});
    order.cum_lots += lots;
    order.cost += lots * ticks;
    bool done = order.cum_lots >= order.qty_lots;
    if (done) {
        order.status = '2';
        order.in_book = false;        // the book frees a filled order's slot by itself
    } else {
        order.status = '1';
    }
    if (ord_status == 0) ord_status = done ? '2' : '1';
    counters_.fills.fetch_add(1, std::memory_order_relaxed);
    fg_event event = order_event(FG_EVENT_FILLED, order);
    event.recv_ns = recv_ns;
    event.qty_lots = lots;
    event.price_ticks = ticks;
    event.aux = lots * ticks;
    event.flags = flags;
    copy_text(event.text_a, sizeof(event.text_a), venue_exec_id, true);
    copy_text(event.text_b, sizeof(event.text_b), order.account, false);
    copy_text(event.text_c, sizeof(event.text_c), order.venue_order_id, true);
    push(event);
    FIX::Message report = execution_report(order, 'F', ord_status, order.cl_ord_id, EMPTY, client_exec_id);
    report.setField(TAG_LAST_QTY, format_units(lots, spec.lot));
    report.setField(TAG_LAST_PX, format_units(ticks, spec.tick));
    set(report, TAG_TEXT, text);
    relay_to_client(order, report);
    if (done) finish(order);
}

// A venue's trade bust (H) or correction (G) of one of the order's fills, found by ExecRefID(19): the
// position, the P&L, the risk book and the order's filled quantity follow it, and the client gets
// the report with ExecRefID naming the fill as it knew it. A bust of a fill the gateway does not hold
// (booked before a restart) reverses the LastQty and LastPx the venue sends; a correction of one, or
// a bust without them, cannot be followed: positions are off, which is fatal. An order that had
// finished stays finished (a bust never reopens quantity at the gateway); a live one works on with
// what the bust gave back.
void Engine::on_trade_correction(VenueState& venue, Order& order, const FIX::Message& message, char exec_type,
                                 char ord_status, int64_t recv_ns) {
    const InstrumentConfig& spec = config_.instruments[order.instrument];
    const std::string& exec_id = text_of(message, TAG_EXEC_ID);
    std::string stored = stored_id(exec_id, FG_TEXT_A);
    if (seen_exec_ids_.contains(hash_id(stored))) {          // this very correction, sent again
        counters_.duplicate_fills.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const std::string& ref = text_of(message, TAG_EXEC_REF_ID);
    std::string ref_stored = stored_id(ref, FG_TEXT_A);
    auto fill = std::find_if(order.fills.begin(), order.fills.end(), [&](const FillRecord& record) {
        return record.exec_id == ref_stored || record.correction_id == ref_stored;
    });
    if (fill != order.fills.end() && fill->busted) {
        // A fill busted already, busted again under another ExecID: followed once.
        counters_.duplicate_fills.fetch_add(1, std::memory_order_relaxed);
        seen_exec_ids_.insert(hash_id(stored));
        return;
    }
    int64_t old_lots = 0, old_ticks = 0;
    if (fill != order.fills.end()) {
        old_lots = fill->lots;
        old_ticks = fill->ticks;
    } else if (exec_type == 'H') {
        old_lots = units_of(text_of(message, TAG_LAST_QTY), spec.lot);
        old_ticks = units_of(text_of(message, TAG_LAST_PX), spec.tick);
    }
    int64_t new_lots = exec_type == 'G' ? units_of(text_of(message, TAG_LAST_QTY), spec.lot) : 0;
    int64_t new_ticks = exec_type == 'G' ? units_of(text_of(message, TAG_LAST_PX), spec.tick) : 0;
    if (ref.empty() || old_lots <= 0 || old_ticks <= 0 || (exec_type == 'G' && (new_lots < 0 || new_ticks <= 0))) {
        alarm(FG_ALARM_UNKNOWN_FILL, "venue " + venue.config.name + (exec_type == 'H' ? " busted" : " corrected") +
              " fill " + (ref.empty() ? std::string("(no ExecRefID)") : ref) + " of order " + gateway_order_id(order.id) +
              (fill == order.fills.end() ? ", a fill the gateway does not hold," : "") +
              " with no whole lots and ticks to follow: positions are off", order.id);
        return;
    }
    seen_exec_ids_.insert(hash_id(stored));
    correct_fill(order, -old_lots, old_ticks, stored, ref_stored, recv_ns);
    if (new_lots > 0) correct_fill(order, new_lots, new_ticks, stored, ref_stored, recv_ns);
    if (fill != order.fills.end()) {
        fill->correction_id = stored;            // a later bust or correction may name either ExecID
        if (new_lots > 0) {
            fill->lots = new_lots;
            fill->ticks = new_ticks;
        } else {
            fill->busted = true;
        }
    } else {
        order.fills.push_back(FillRecord{ref_stored, new_lots, new_ticks, stored, new_lots <= 0});
    }
    alarm(FG_ALARM_TRADE_CORRECTED, "venue " + venue.config.name + (exec_type == 'H' ? " busted" : " corrected") +
          " fill " + ref + " of order " + gateway_order_id(order.id) + ": " + format_units(old_lots, spec.lot) + " at " +
          format_units(old_ticks, spec.tick) + (exec_type == 'G' ? " is now " + format_units(new_lots, spec.lot) +
          " at " + format_units(new_ticks, spec.tick) : std::string(" undone")) + "; positions and P&L follow",
          order.id);
    if (!order.finished) {
        if (order.cum_lots >= order.qty_lots) {
            order.status = '2';
        } else {
            order.status = order.cum_lots > 0 ? '1' : (order.acked ? '0' : 'A');
        }
    }
    if (ord_status == 0 || order.finished) ord_status = order.status == 'A' ? '0' : order.status;
    FIX::Message report = execution_report(order, exec_type, ord_status, order.cl_ord_id, EMPTY,
                                           venue.config.name + "-" + exec_id);
    report.setField(TAG_EXEC_REF_ID, venue.config.name + "-" + ref);
    report.setField(TAG_LAST_QTY, format_units(exec_type == 'G' ? new_lots : old_lots, spec.lot));
    report.setField(TAG_LAST_PX, format_units(exec_type == 'G' ? new_ticks : old_ticks, spec.tick));
    set(report, TAG_TEXT, text_of(message, TAG_TEXT));
    relay_to_client(order, report);
    if (!order.finished && order.cum_lots >= order.qty_lots) {
        order.in_book = false;
        finish(order);
    }
}

void Engine::correct_fill(Order& order, int64_t delta_lots, int64_t ticks, const std::string& exec_id,
                          const std::string& ref_exec_id, int64_t recv_ns) {
    int book_side = order.side == '1' ? 1 : 2;
    fast_.on_trade_corrected(fast_.book, order.in_book ? order.id : 0, order.instrument, book_side, delta_lots, ticks);
    order.cum_lots += delta_lots;
    if (order.cum_lots < 0) order.cum_lots = 0;
    order.cost += delta_lots * ticks;
    if (order.cost < 0) order.cost = 0;
    fg_event event = order_event(FG_EVENT_TRADE_CORRECTED, order);
    event.recv_ns = recv_ns;
    event.qty_lots = delta_lots;
    event.price_ticks = ticks;
    event.aux = delta_lots * ticks;
    copy_text(event.text_a, sizeof(event.text_a), exec_id, true);
    copy_text(event.text_b, sizeof(event.text_b), order.account, false);
    copy_text(event.text_c, sizeof(event.text_c), ref_exec_id, true);
    push(event);
}

// The venue restated the order (ExecType D): a new OrderQty(38) is followed by the risk book and the
// OMS; an order restated to its filled quantity or below is done. The client gets the report.
void Engine::on_restatement(VenueState& venue, Order& order, const FIX::Message& message, char ord_status,
                            int64_t recv_ns) {
    const InstrumentConfig& spec = config_.instruments[order.instrument];
    if (order.finished) {
        counters_.late_venue_reports.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    int64_t lots = units_of(text_of(message, TAG_ORDER_QTY), spec.lot);
    bool done = false;
    if (lots > 0 && lots != order.qty_lots) {
        if (order.in_book) fast_.on_restated(fast_.book, order.id, lots);
        order.qty_lots = lots > order.cum_lots ? lots : order.cum_lots;
        done = order.cum_lots >= order.qty_lots;
        if (done) {
            order.status = order.cum_lots > 0 ? '2' : '4';
            order.in_book = false;
        }
        fg_event event = order_event(FG_EVENT_RESTATED, order);
        event.recv_ns = recv_ns;
        copy_text(event.text_a, sizeof(event.text_a), text_of(message, TAG_TEXT), false);
        push(event);
    } else if (lots <= 0 && field(message, TAG_ORDER_QTY) != nullptr) {
        alarm(FG_ALARM_UNKNOWN_VENUE_REPORT, "venue " + venue.config.name + " restated order " +
              gateway_order_id(order.id) + " to OrderQty " + text_of(message, TAG_ORDER_QTY) +
              ", not a whole number of lots: not followed", order.id);
    }
    if (ord_status == 0 || done) ord_status = done ? order.status : ord_status;
    FIX::Message report = execution_report(order, 'D', ord_status, order.cl_ord_id, EMPTY,
                                           venue.config.name + "-" + text_of(message, TAG_EXEC_ID));
    set(report, TAG_TEXT, text_of(message, TAG_TEXT));
    relay_to_client(order, report);
    if (done) finish(order);
}

// The venue refused a pending cancel or replace (or never got it): drop the request (a replace gives
// back what it reserved), tell the state thread, and answer the client with an OrderCancelReject when
// the request was its own. `ord_status` 0: the order's status as the gateway sees it.
void Engine::refuse_request(Order& order, uint8_t kind, char ord_status, const std::string& reason,
                            const std::string& text, int64_t recv_ns) {
    Request refused = kind == REQUEST_REPLACE ? order.replace : order.cancel;
    if (kind == REQUEST_REPLACE) {
        if (order.in_book) fast_.on_replace_rejected(fast_.book, order.id);
        order.replace = Request();
    } else {
        order.cancel = Request();
    }
    fg_event event = order_event(kind == REQUEST_REPLACE ? FG_EVENT_REPLACE_REJECTED : FG_EVENT_CANCEL_REJECTED, order);
    event.recv_ns = recv_ns;
    event.aux = refused.number;
    push(event);
    if (refused.client_cl_ord_id.empty()) return;             // the gateway's own cancel: nobody to tell
    FIX::Message reject = new_message("9");
    reject.setField(TAG_ORDER_ID, gateway_order_id(order.id));
    reject.setField(TAG_CL_ORD_ID, refused.client_cl_ord_id);
    reject.setField(TAG_ORIG_CL_ORD_ID, refused.orig_client_cl_ord_id);
    reject.setField(TAG_ORD_STATUS, std::string(1, ord_status ? ord_status : visible_status(order)));
    reject.setField(TAG_CXL_REJ_RESPONSE_TO, kind == REQUEST_REPLACE ? "2" : "1");
    reject.setField(TAG_CXL_REJ_REASON, reason);
    set(reject, TAG_TEXT, text);
    send_to_client(order.session, reject);
}

void Engine::on_venue_cancel_reject(VenueState& venue, const FIX::Message& message, int64_t recv_ns) {
    int64_t request = 0;
    Order* order = order_of_venue_id(text_of(message, TAG_CL_ORD_ID), request);
    if (order == nullptr || request == 0) {
        counters_.unknown_venue_reports.fetch_add(1);
        return;
    }
    const std::string& venue_text = text_of(message, TAG_TEXT);
    char ord_status = char_of(message, TAG_ORD_STATUS, '0');
    const std::string& given = text_of(message, TAG_CXL_REJ_REASON);
    std::string reason = given.empty() ? std::string("99") : given;
    if (order->replace.kind == REQUEST_REPLACE && request == order->replace.number)
        refuse_request(*order, REQUEST_REPLACE, ord_status, reason, venue_text, recv_ns);
    else if (order->cancel.kind == REQUEST_CANCEL && request == order->cancel.number)
        refuse_request(*order, REQUEST_CANCEL, ord_status, reason, venue_text, recv_ns);
    else
        counters_.unknown_venue_reports.fetch_add(1);
}

// A venue's session Reject (35=3) or BusinessMessageReject (35=j): traced by RefSeqNum to what we sent.
void Engine::on_venue_reject(VenueState& venue, const FIX::Message& message, bool business, int64_t recv_ns) {
    const std::string& ref_seq_text = text_of(message, TAG_REF_SEQ_NUM);
    int64_t ref_seq = atoll(ref_seq_text.c_str());
    const std::string& venue_text = text_of(message, TAG_TEXT);
    std::string what = business ? "BusinessMessageReject" : "session Reject";
    const VenueState::Sent& sent = venue.sent[ref_seq & (int64_t)(venue.sent.size() - 1)];
    int code = business ? FG_ALARM_VENUE_BUSINESS_REJECT : FG_ALARM_VENUE_SESSION_REJECT;
    if (ref_seq <= 0 || sent.seq != ref_seq) {
        alarm(code, "venue " + venue.config.name + " sent a " + what + " of message " + ref_seq_text + " (" +
              text_of(message, TAG_REF_MSG_TYPE) + "): " + venue_text);
        return;
    }
    std::string msg_type(sent.msg_type);
    if (msg_type == "H" || msg_type == "AF") {
        std::string reason = "refused reconciliation (" + what + " of " + msg_type + "): " + venue_text;
        alarm(FG_ALARM_RECONCILIATION_REFUSED, "venue " + venue.config.name + " " + reason);
        set_venue_state(venue, FG_VENUE_REFUSED, reason);
        Order* order = find_order(sent.order_id);
        if (order != nullptr && order->reconcile_pending > 0) {
            --order->reconcile_pending;
            --venue.reconcile_outstanding;
        }
        return;
    }
    Order* order = find_order(sent.order_id);
    alarm(code, "venue " + venue.config.name + " sent a " + what + " of " + msg_type + " for order " +
          gateway_order_id(sent.order_id) + ": " + venue_text, sent.order_id);
    if (order == nullptr) return;
    std::string text = "the venue refused the " + std::string(msg_type == "D" ? "order" : msg_type == "F" ? "cancel" : "replace") +
                       " (" + what + "): " + venue_text;
    if (msg_type == "D" && sent.request == 0) {
        if (!order->in_book) return;
        fast_.on_canceled(fast_.book, order->id);
        order->in_book = false;
        order->status = '8';
        fg_event event = order_event(FG_EVENT_VENUE_REJECTED, *order);
        event.recv_ns = recv_ns;
        copy_text(event.text_a, sizeof(event.text_a), text, false);
        push(event);
        FIX::Message report = execution_report(*order, '8', '8', order->cl_ord_id, EMPTY, next_exec_id());
        report.setField(TAG_TEXT, text);
        report.setField(TAG_ORD_REJ_REASON, "99");
        send_to_client(order->session, report);
        finish(*order);
    } else if (msg_type == "F" && order->cancel.kind == REQUEST_CANCEL && order->cancel.number == sent.request) {
        refuse_request(*order, REQUEST_CANCEL, 0, "99", text, recv_ns);
    } else if (msg_type == "G" && order->replace.kind == REQUEST_REPLACE && order->replace.number == sent.request) {
        refuse_request(*order, REQUEST_REPLACE, 0, "99", text, recv_ns);
    }
}

// -- RECONCILIATION ---------------------------------------------------------------------------------

int64_t Engine::reconcile(int index) {
    std::lock_guard<std::mutex> lock(lock_);
    VenueState& venue = *venues_[index];
    if (!venue.logged_on.load()) return 0;
    int64_t sent = 0;
    venue.reconcile_outstanding = 0;
    for (auto& entry : orders_) {
        Order& order = entry.second;
        if (order.venue != index || !order.in_book) continue;
        order.reconcile_pending = 0;
        send_status_requests(venue, order);
        sent += order.reconcile_pending;
    }
    FIX::Message mass = new_message("AF");
    venue.mass_status_id = config_.token + "-MS" + std::to_string(next_internal_id_++);
    mass.setField(TAG_MASS_STATUS_REQ_ID, venue.mass_status_id);
    mass.setField(TAG_MASS_STATUS_REQ_TYPE, "7");
    venue.mass_status_done = !send_to_venue(venue, mass, 0, 0);
    venue.reconcile_deadline_ns = monotonic_ns() + config_.reconcile_timeout_ms * 1000000LL;
    if (venue.state.load() != FG_VENUE_REFUSED) set_venue_state(venue, FG_VENUE_RECONCILING, "reconciling");
    check_reconciled(venue);
    return sent;
}

void Engine::send_status_requests(VenueState& venue, Order& order) {
    const InstrumentConfig& spec = config_.instruments[order.instrument];
    std::vector<std::pair<std::string, int64_t>> ids{{order.venue_cl_ord_id, 0}};
    if (order.replace.kind == REQUEST_REPLACE) {
        std::string root = order.venue_cl_ord_id.substr(0, order.venue_cl_ord_id.find('.'));
        ids.emplace_back(root + "." + std::to_string(order.replace.number), order.replace.number);
    }
    for (auto& id : ids) {
        FIX::Message status = new_message("H");
        set(status, TAG_ORDER_ID, order.venue_order_id);
        status.setField(TAG_CL_ORD_ID, id.first);
        status.setField(TAG_SYMBOL, spec.symbol);
        set_char(status, TAG_SIDE, order.side);
        if (send_to_venue(venue, status, order.id, id.second)) {
            ++order.reconcile_pending;
            ++venue.reconcile_outstanding;
        }
    }
}

void Engine::check_reconciled(VenueState& venue) {
    if (venue.state.load() != FG_VENUE_RECONCILING) return;
    // Every open order's status answered. The mass status is not waited for: venues differ in how they
    // end it (or whether they answer at all); what it brings is applied when it comes.
    if (venue.reconcile_outstanding <= 0) set_venue_state(venue, FG_VENUE_READY, "reconciled");
}

void Engine::set_venue_state(VenueState& venue, int state, const std::string& reason) {
    if (venue.state.load() == state && venue.state_reason == reason) return;
    venue.state.store(state);
    venue.state_reason = reason;
    fg_event event;
    memset(&event, 0, sizeof(event));
    event.kind = FG_EVENT_VENUE_STATE;
    event.venue_id = (int16_t)venue.index;
    event.session_id = -1;
    event.instrument_id = -1;
    event.status = (uint8_t)state;
    event.flags = FG_FLAG_VENUE;
    event.recv_ns = realtime_ns();
    copy_text(event.text_a, sizeof(event.text_a), reason, false);
    push(event, true);
}

std::string Engine::venue_state_reason(int index) {
    std::lock_guard<std::mutex> lock(lock_);
    return venues_[index]->state_reason;
}

void Engine::on_status_report(VenueState& venue, const FIX::Message& message, int64_t recv_ns) {
    const std::string& cl_ord_id = text_of(message, TAG_CL_ORD_ID);
    const std::string& mass_id = text_of(message, TAG_MASS_STATUS_REQ_ID);
    bool mass = !mass_id.empty() && mass_id == venue.mass_status_id;
    if (mass && char_of(message, TAG_LAST_RPT_REQUESTED) == 'Y') venue.mass_status_done = true;
    char ord_status = char_of(message, TAG_ORD_STATUS);
    const std::string& venue_order_id = text_of(message, TAG_ORDER_ID);
    bool unknown = ord_status == '8' && (venue_order_id.empty() || venue_order_id == "NONE");
    int64_t request = 0;
    Order* found = order_of_venue_id(cl_ord_id, request);
    if (found == nullptr) {
        bool live = ord_status == '0' || ord_status == '1' || ord_status == 'A' || ord_status == 'E' || ord_status == '6';
        if (live && !unknown && !cl_ord_id.empty()) {
            // Live at the venue, unknown here (accepted just before a crash, never journaled): an order
            // nobody accounts for is cancelled.
            counters_.unknown_venue_orders.fetch_add(1);
            FIX::Message cancel = new_message("F");
            cancel.setField(TAG_ORIG_CL_ORD_ID, cl_ord_id);
            set(cancel, TAG_ORDER_ID, venue_order_id);
            cancel.setField(TAG_CL_ORD_ID, config_.token + "-UX" + std::to_string(next_internal_id_++));
            set(cancel, TAG_SYMBOL, text_of(message, TAG_SYMBOL));
            set_char(cancel, TAG_SIDE, char_of(message, TAG_SIDE));
            cancel.setField(TAG_TRANSACT_TIME, utc_timestamp(realtime_ns()));
            set(cancel, TAG_ORDER_QTY, text_of(message, TAG_ORDER_QTY));
            send_to_venue(venue, cancel, 0, 0);
            alarm(FG_ALARM_UNKNOWN_VENUE_ORDER, "venue " + venue.config.name + " holds order " + cl_ord_id + " (" +
                  text_of(message, TAG_SYMBOL) + ", leaves " + text_of(message, TAG_LEAVES_QTY) +
                  ") that the gateway does not know: cancelled");
        }
        check_reconciled(venue);
        return;
    }
    Order& order = *found;
    if (!mass && order.reconcile_pending > 0) {
        --order.reconcile_pending;
        --venue.reconcile_outstanding;
    }
    const InstrumentConfig& spec = config_.instruments[order.instrument];
    auto reconciled = [&](const std::string& difference) {
        counters_.reconciled.fetch_add(1);
        fg_event event = order_event(FG_EVENT_RECONCILED, order);
        event.recv_ns = recv_ns;
        copy_text(event.text_a, sizeof(event.text_a), difference, false);
        push(event);
    };
    if (order.in_book) {
        if (!venue_order_id.empty() && venue_order_id != "NONE") order.venue_order_id = venue_order_id;
        bool replace_pending = order.replace.kind == REQUEST_REPLACE;
        if (request > 0 && replace_pending && request == order.replace.number) {
            if (unknown) {
                // The replace never reached the venue: the order keeps its terms.
                refuse_request(order, REQUEST_REPLACE, 0, "99",
                               "the replace never reached the venue (found at reconciliation)", recv_ns);
                reconciled("replace never received by the venue");
                check_reconciled(venue);
                return;
            }
            // The venue knows the new id: the replace happened while the gateway was away.
            Request replace = order.replace;
            order.replace = Request();
            fast_.on_replaced(fast_.book, order.id);
            order.qty_lots = replace.qty_lots;
            if (order.ord_type == '2') order.price_ticks = replace.price_ticks;
            order.replaced_ids.push_back(order.cl_ord_id);
            std::string orig = order.cl_ord_id;
            order.cl_ord_id = replace.client_cl_ord_id;
            order.venue_cl_ord_id = cl_ord_id;
            if (order.status == 'A') order.status = '0';
            fg_event event = order_event(FG_EVENT_REPLACED, order);
            event.recv_ns = recv_ns;
            event.aux = replace.number;
            event.flags = FG_FLAG_RECONCILED;
            push(event);
            FIX::Message report = execution_report(order, '5', order.cum_lots ? '1' : '0', order.cl_ord_id, orig,
                                                   venue.config.name + "-R-" + text_of(message, TAG_EXEC_ID));
            report.setField(TAG_TEXT, "replaced at the venue while the gateway was away (found at reconciliation)");
            send_to_client(order.session, report);
            reconciled("replace applied at the venue");
        } else if (unknown) {
            if (replace_pending || request > 0) {
                check_reconciled(venue);
                return;                       // known to the venue by the replace's id: that answer decides
            }
            // The venue never received it: release it and tell the client.
            fast_.on_canceled(fast_.book, order.id);
            order.in_book = false;
            order.status = '8';
            std::string text = "the venue never received the order (found at reconciliation)";
            fg_event event = order_event(FG_EVENT_VENUE_REJECTED, order);
            event.recv_ns = recv_ns;
            event.flags = FG_FLAG_RECONCILED;
            event.code = CODE_VENUE_UNAVAILABLE;
            copy_text(event.text_a, sizeof(event.text_a), text, false);
            push(event);
            FIX::Message report = execution_report(order, '8', '8', order.cl_ord_id, EMPTY, next_exec_id());
            report.setField(TAG_TEXT, reject_text(CODE_VENUE_UNAVAILABLE, text));
            report.setField(TAG_ORD_REJ_REASON, "99");
            send_to_client(order.session, report);
            reconciled("never received by the venue");
            finish(order);
            check_reconciled(venue);
            return;
        }
    }
    if (!order.in_book) {
        check_reconciled(venue);
        return;
    }
    int64_t venue_cum = units_of(text_of(message, TAG_CUM_QTY), spec.lot);
    if (venue_cum > order.cum_lots) {
        int64_t missing = venue_cum - order.cum_lots;
        int64_t ticks = 0;
        int64_t mantissa;
        int scale;
        if (parse_decimal(text_of(message, TAG_AVG_PX), mantissa, scale) && mantissa > 0) {
            // average price in ticks = mantissa 10^-scale / (tick.mantissa 10^-tick.scale)
            wide average_num = (wide)mantissa * power_of_ten(spec.tick.scale);
            wide average_den = (wide)spec.tick.mantissa * power_of_ten(scale);
            ticks = round_ratio(average_num * venue_cum - (wide)order.cost * average_den, average_den * missing);
        }
        if (ticks <= 0) ticks = order.price_ticks > 0 ? order.price_ticks : 1;
        std::string status_exec_id = text_of(message, TAG_EXEC_ID);
        std::string venue_exec_id = stored_id("R-" + status_exec_id, FG_TEXT_A);
        bool done = order.cum_lots + missing >= order.qty_lots;
        book_fill(venue, order, missing, ticks, venue_exec_id, FG_FLAG_RECONCILED, recv_ns,
                  venue.config.name + "-R-" + status_exec_id, done ? '2' : '1',
                  "fill learnt at reconciliation");
        reconciled("missed fill of " + format_units(missing, spec.lot) + " at " + format_units(ticks, spec.tick));
    }
    if (!order.in_book) {
        check_reconciled(venue);
        return;
    }
    if (ord_status == '2' || ord_status == '4' || ord_status == 'C' || ord_status == '3') {
        char exec_type = ord_status == '2' ? '4' : ord_status;
        fast_.on_canceled(fast_.book, order.id);
        order.in_book = false;
        order.status = ord_status == '2' ? '4' : ord_status;
        uint8_t kind = exec_type == 'C' ? FG_EVENT_EXPIRED : exec_type == '3' ? FG_EVENT_DONE_FOR_DAY : FG_EVENT_CANCELED;
        fg_event event = order_event(kind, order);
        event.recv_ns = recv_ns;
        event.flags = FG_FLAG_RECONCILED;
        push(event);
        FIX::Message report = execution_report(order, exec_type, order.status, order.cl_ord_id, EMPTY,
                                               venue.config.name + "-R-" + text_of(message, TAG_EXEC_ID));
        report.setField(TAG_TEXT, "closed at the venue while the gateway was away (found at reconciliation)");
        send_to_client(order.session, report);
        reconciled(std::string("closed at the venue (") + ord_status + ")");
        finish(order);
    } else if (order.status == 'A' && (ord_status == '0' || ord_status == '1')) {
        order.acked = true;
        order.status = '0';
        fast_.on_acked(fast_.book, order.id);
        fg_event event = order_event(FG_EVENT_ACKED, order);
        event.recv_ns = recv_ns;
        event.flags = FG_FLAG_RECONCILED;
        copy_text(event.text_c, sizeof(event.text_c), order.venue_order_id, true);
        push(event);
    }
    check_reconciled(venue);
}

// -- MARKET DATA ------------------------------------------------------------------------------------

void Engine::on_market_data(VenueState& venue, const FIX::Message& message, bool incremental, int64_t recv_ns) {
    int64_t venue_ns = parse_utc_timestamp(text_of(message.getHeader(), TAG_SENDING_TIME));
    if (venue_ns == 0) venue_ns = recv_ns;
    size_t count = message.groupCount(TAG_NO_MD_ENTRIES);
    int snapshot_instrument = -1;
    if (!incremental) {
        auto found = symbols_.find(text_of(message, TAG_SYMBOL));
        if (found == symbols_.end()) return;
        snapshot_instrument = found->second;
        venue.bids[snapshot_instrument] = 0.0;
        venue.asks[snapshot_instrument] = 0.0;
    }
    std::vector<int> touched;
    if (snapshot_instrument >= 0) touched.push_back(snapshot_instrument);
    for (size_t index = 1; index <= count; ++index) {
        const FIX::FieldMap& entry = message.getGroupRef((int)index, TAG_NO_MD_ENTRIES);
        int instrument = snapshot_instrument;
        if (incremental) {
            auto found = symbols_.find(text_of(entry, TAG_SYMBOL));
            if (found == symbols_.end()) continue;
            instrument = found->second;
        }
        char type = char_of(entry, TAG_MD_ENTRY_TYPE);
        const std::string* price_text = field(entry, TAG_MD_ENTRY_PX);
        double price = price_text ? decimal_to_double(price_text->data(), price_text->size()) : 0.0;
        if (type == '2') {
            if (price_text && quote_source_[instrument] == venue.index)
                fast_.on_trade(fast_.book, instrument, price, venue_ns, recv_ns);
            continue;
        }
        const std::string* position = field(entry, TAG_MD_ENTRY_POSITION_NO);
        if ((position && *position != "1") || (type != '0' && type != '1')) continue;
        char action = incremental ? char_of(entry, TAG_MD_UPDATE_ACTION, '1') : '0';
        double value = action == '2' || price_text == nullptr ? 0.0 : price;
        if (type == '0') venue.bids[instrument] = value;
        else venue.asks[instrument] = value;
        if (std::find(touched.begin(), touched.end(), instrument) == touched.end()) touched.push_back(instrument);
    }
    for (int instrument : touched) {
        double bid = venue.bids[instrument];
        double ask = venue.asks[instrument];
        if (bid == 0.0 || ask == 0.0) continue;
        venue.quote_ns[instrument] = recv_ns;
        venue.quote_venue_ns[instrument] = venue_ns;
        // Only the instrument's source feeds its quote book: its own venue, or the backup standing in.
        if (quote_source_[instrument] == venue.index)
            fast_.on_quote(fast_.book, instrument, bid, ask, venue_ns, recv_ns);
    }
}

// An instrument's primary quotes stale past its limit while the backup's are fresh: the book takes the
// backup's (its latest quote at once). Back to the primary once it has quoted within half the limit.
void Engine::check_quote_sources(int64_t now_ns) {
    for (size_t i = 0; i < config_.instruments.size(); ++i) {
        const InstrumentConfig& instrument = config_.instruments[i];
        if (instrument.quote_backup < 0) continue;
        const VenueState& primary = *venues_[instrument.venue];
        const VenueState& backup = *venues_[instrument.quote_backup];
        int64_t primary_age = primary.quote_ns[i] ? now_ns - primary.quote_ns[i] : INT64_MAX;
        int64_t backup_age = backup.quote_ns[i] ? now_ns - backup.quote_ns[i] : INT64_MAX;
        int chosen = quote_source_[i];
        if (chosen == instrument.venue && primary_age > instrument.stale_ns && backup_age <= instrument.stale_ns)
            chosen = instrument.quote_backup;
        else if (chosen == instrument.quote_backup && primary_age <= instrument.stale_ns / 2)
            chosen = instrument.venue;
        if (chosen == quote_source_[i]) continue;
        quote_source_[i] = chosen;
        const VenueState& source = *venues_[chosen];
        fast_.on_quote(fast_.book, (int)i, source.bids[i], source.asks[i], source.quote_venue_ns[i], source.quote_ns[i]);
    }
}

int Engine::quote_source(int instrument) {
    std::lock_guard<std::mutex> lock(lock_);
    return instrument >= 0 && instrument < (int)quote_source_.size() ? quote_source_[instrument] : -1;
}

// -- SENDING ----------------------------------------------------------------------------------------

bool Engine::send_to_venue(VenueState& venue, FIX::Message& message, int64_t order_id, int64_t request) {
    if (dry_sessions_) {
        std::string text;
        message.toString(text);
        return true;
    }
    if (!venue.logged_on.load(std::memory_order_acquire) || venue.session == nullptr) return false;
    if (!venue.session->isLoggedOn()) return false;
    if (!venue.session->send(message)) return false;
    if (fast_.venue_take != nullptr) fast_.venue_take(fast_.book, venue.index, realtime_ns());
    const std::string* seq_text = field(message.getHeader(), TAG_MSG_SEQ_NUM);
    int64_t seq = seq_text ? atoll(seq_text->c_str()) : 0;
    if (seq > 0) {
        VenueState::Sent& sent = venue.sent[seq & (int64_t)(venue.sent.size() - 1)];
        sent.seq = seq;
        sent.order_id = order_id;
        sent.request = request;
        const std::string& msg_type = text_of(message.getHeader(), TAG_MSG_TYPE);
        snprintf(sent.msg_type, sizeof(sent.msg_type), "%s", msg_type.c_str());
    }
    return true;
}

void Engine::send_to_client(int session, FIX::Message& message) {
    if (session < 0 || session >= (int)clients_.size()) return;
    if (dry_sessions_) {
        std::string text;
        message.toString(text);
        return;
    }
    ClientState& client = *clients_[session];
    // A client that is not logged on gets it stored and resent when it logs on again.
    if (client.session != nullptr) client.session->send(message);
}

// -- EVENTS -----------------------------------------------------------------------------------------

fg_event Engine::order_event(uint8_t kind, const Order& order) const {
    fg_event event;
    memset(&event, 0, sizeof(event));
    event.kind = kind;
    event.order_id = order.id;
    event.qty_lots = order.qty_lots;
    event.price_ticks = order.price_ticks;
    event.cum_lots = order.cum_lots;
    event.instrument_id = order.instrument;
    event.session_id = (int16_t)order.session;
    event.venue_id = (int16_t)order.venue;
    event.side = (uint8_t)side_number(order.side);
    event.ord_type = (uint8_t)ord_type_number(order.ord_type);
    event.tif = (uint8_t)(order.tif - '0');
    event.status = (uint8_t)order.status;
    return event;
}

void Engine::push(fg_event& event, bool urgent) {
    if (event.seq == 0) event.seq = next_event_seq_++;
    if (event.kind >= FG_EVENT_ACCEPTED && event.kind <= FG_EVENT_RESTATED && event.kind != FG_EVENT_ACKED &&
        event.reserved == 0) {
        write_ahead(event);
    }
    event.reserved = 0;
    // SEQ_CST: the ring's tail is visible before the consumer's sleeping flag is read (see ring.h).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!ring_.push(event, urgent) && ring_.overflow_size() == 1 && event.kind != FG_EVENT_ALARM) {
        alarm(FG_ALARM_RING_OVERFLOW, "the event ring to the state thread is full: events wait in the overflow "
              "queue (none is lost) and new orders are refused as BUSY until it drains");
    }
}

void Engine::alarm(int code, const std::string& text, int64_t order_id) {
    counters_.alarms.fetch_add(1, std::memory_order_relaxed);
    fg_event event;
    memset(&event, 0, sizeof(event));
    event.kind = FG_EVENT_ALARM;
    event.code = (uint8_t)code;
    event.order_id = order_id;
    event.instrument_id = -1;
    event.session_id = -1;
    event.venue_id = -1;
    event.recv_ns = realtime_ns();
    copy_text(event.text_a, sizeof(event.text_a) + sizeof(event.text_b) + sizeof(event.text_c), text, false);
    push(event, true);
}

void Engine::push_session_event(uint8_t kind, bool venue, int index, const std::string& text) {
    fg_event event;
    memset(&event, 0, sizeof(event));
    event.kind = kind;
    event.recv_ns = realtime_ns();
    event.instrument_id = -1;
    event.session_id = venue ? -1 : (int16_t)index;
    event.venue_id = venue ? (int16_t)index : -1;
    event.flags = venue ? FG_FLAG_VENUE : 0;
    copy_text(event.text_a, sizeof(event.text_a), text, false);
    push(event, true);
}

void Engine::write_ahead(fg_event& event) {
    // A plain write to the page cache: it survives a crash of the process and never waits for the
    // state thread's journal transactions. The message that reveals the event goes out only if the
    // bytes are down.
    if (event.seq == 0) event.seq = next_event_seq_++;
    event.reserved = 1;       // written ahead (a mark for push; cleared before the bytes go anywhere)
    fg_event copy = event;
    copy.reserved = 0;
    ssize_t written = ::write(intent_fd_, &copy, sizeof(copy));
    if (written != (ssize_t)sizeof(copy)) throw std::runtime_error("cannot write the intent log");
}

int64_t Engine::rotate_intents(const std::string& previous_path) {
    std::lock_guard<std::mutex> lock(lock_);
    if (::rename(config_.intent_log.c_str(), previous_path.c_str()) != 0) return -1;
    int fd = ::open(config_.intent_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    ::close(intent_fd_);
    intent_fd_ = fd;
    return 0;
}

int64_t Engine::drain(fg_event* out, int64_t limit) {
    int64_t count = ring_.drain(out, limit);
    if (count < limit && !ring_.overflow_empty_relaxed()) {
        std::lock_guard<std::mutex> lock(lock_);
        // Everything in the ring is older than the overflow queue: empty the ring first.
        count += ring_.drain(out + count, limit - count);
        if (count < limit && ring_.size() == 0) count += ring_.drain_overflow(out + count, limit - count);
    }
    return count;
}

// -- COMMANDS ---------------------------------------------------------------------------------------

int64_t Engine::cancel_all(int session, uint8_t reason, const std::string& text) {
    std::lock_guard<std::mutex> lock(lock_);
    int64_t sent = 0;
    std::vector<int64_t> ids;
    for (auto& entry : orders_) {
        Order& order = entry.second;
        if (!order.in_book || terminal(order.status) || order.cancel.kind != REQUEST_NONE) continue;
        if (session >= 0 && order.session != session) continue;
        if (!venues_[order.venue]->logged_on.load()) continue;
        ids.push_back(order.id);
    }
    std::sort(ids.begin(), ids.end());
    for (int64_t id : ids) {
        Order& order = orders_[id];
        if (send_cancel(order, EMPTY, order.cl_ord_id, reason ? reason : CANCEL_BY_OPERATOR, text, realtime_ns())) ++sent;
    }
    return sent;
}

void Engine::log_out_venues(const std::string& reason) {
    std::lock_guard<std::mutex> lock(lock_);
    for (auto& venue : venues_)
        if (venue->session) venue->session->logout(reason);
}

void Engine::log_on_venues() {
    std::lock_guard<std::mutex> lock(lock_);
    for (auto& venue : venues_)
        if (venue->session) venue->session->logon();
}

void Engine::set_risk_reason(const std::string& reason) {
    std::lock_guard<std::mutex> lock(lock_);
    risk_reason_ = reason;
}

void Engine::set_reduce_only_reason(const std::string& reason) {
    std::lock_guard<std::mutex> lock(lock_);
    code_reasons_[CODE_REDUCE_ONLY] = reason;
}

void Engine::set_code_reason(int code, const std::string& reason) {
    if (code < 0 || code >= CODE_REASONS) return;
    std::lock_guard<std::mutex> lock(lock_);
    code_reasons_[code] = reason;
}

int Engine::firm_budget(int kind, int session, int op, double value, double* budget, double* usage) {
    std::lock_guard<std::mutex> lock(lock_);
    return fast_.firm_budget(fast_.book, kind, session, op, value, budget, usage);
}

int64_t Engine::set_account_killed(const std::string& account, bool killed, const std::string& reason) {
    std::lock_guard<std::mutex> lock(lock_);
    if (!killed) {
        killed_accounts_.erase(account);
        return 0;
    }
    killed_accounts_[account] = reason;
    int64_t sent = 0;
    std::vector<int64_t> ids;
    for (auto& entry : orders_) {
        Order& order = entry.second;
        if (!order.in_book || terminal(order.status) || order.cancel.kind != REQUEST_NONE) continue;
        const std::string& owner = order.account.empty() && order.session >= 0 ? clients_[order.session]->config.name
                                                                              : order.account;
        if (owner != account || !venues_[order.venue]->logged_on.load()) continue;
        ids.push_back(order.id);
    }
    std::sort(ids.begin(), ids.end());
    for (int64_t id : ids) {
        Order& order = orders_[id];
        if (send_cancel(order, EMPTY, order.cl_ord_id, CANCEL_BY_OPERATOR, "kill switch for account " + account + ": " +
                        reason, realtime_ns()))
            ++sent;
    }
    return sent;
}

int Engine::client_of(const FIX::SessionID& id) const {
    const std::string& target = id.getTargetCompID().getValue();
    if (id.getSenderCompID().getValue() != config_.comp_id) return -1;
    for (const auto& client : clients_)
        if (client->config.comp_id == target) return client->index;
    return -1;
}

std::string Engine::logon_refusal(int client, const std::string* username, const std::string* password) {
    const ClientConfig& config = clients_[client]->config;
    if (!config.username.empty() && (username == nullptr || password == nullptr || *username != config.username ||
                                     *password != config.password))
        return "wrong username or password";
    if (!config.certificate_name.empty()) {
        std::string name = peer_certificate_name(clients_[client]->session);
        if (name != config.certificate_name)
            return name.empty() ? std::string("no TLS client certificate, and the client must show one")
                                : "the TLS client certificate is " + name + "'s, not the client's";
    }
    if (!config.source_addresses.empty()) {
        std::string address = peer_address(clients_[client]->session);
        if (std::find(config.source_addresses.begin(), config.source_addresses.end(), address) ==
            config.source_addresses.end())
            return "a connection from " + (address.empty() ? std::string("an unknown address") : address) +
                   " is not one of the client's source addresses";
    }
    return std::string();
}

bool Engine::reset_logon_admitted(int client, const std::string& username, const std::string& password) {
    std::string refusal = logon_refusal(client, &username, &password);
    if (refusal.empty()) return true;
    std::lock_guard<std::mutex> lock(lock_);
    push_logon_refused(client, refusal + " with a reset: disconnected, sequence numbers kept");
    return false;
}

void Engine::push_logon_refused(int client, const std::string& reason) {
    fg_event event;
    memset(&event, 0, sizeof(event));
    event.kind = FG_EVENT_LOGON_REFUSED;
    event.session_id = (int16_t)client;
    event.venue_id = -1;
    event.instrument_id = -1;
    copy_text(event.text_a, sizeof(event.text_a), clients_[client]->config.comp_id, false);
    copy_text(event.text_b, sizeof(event.text_b), reason, false);
    push(event, true);
}

// The common name (CN) of the certificate the peer showed on the session's TLS connection ("" when
// there is none: no TLS, or no certificate).
std::string Engine::peer_certificate_name(FIX::Session* session) {
    if (session == nullptr) return std::string();
    FIX::Locker locker(session->*member(SessionMutex()));
    FIX::Responder* responder = session->*member(SessionResponder());
    if (responder == nullptr || typeid(*responder) != typeid(FIX::ThreadedSSLSocketConnection)) return std::string();
    SSL* ssl = ((FIX::ThreadedSSLSocketConnection*)responder)->sslObject();
    if (ssl == nullptr) return std::string();
    X509* certificate = SSL_get1_peer_certificate(ssl);
    if (certificate == nullptr) return std::string();
    char name[256] = {0};
    int length = X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, name, sizeof(name));
    X509_free(certificate);
    return length > 0 ? std::string(name, (size_t)length) : std::string();
}

// The IP address of the peer on the session's connection ("" when there is none).
std::string Engine::peer_address(FIX::Session* session) { return peer_endpoint(session, false); }

std::string Engine::venue_connection(int index) {
    std::lock_guard<std::mutex> lock(lock_);
    return venues_[index]->logged_on.load() ? peer_endpoint(venues_[index]->session, true) : std::string();
}

// "address" or "address:port" of the peer on the session's connection ("" when there is none).
std::string Engine::peer_endpoint(FIX::Session* session, bool with_port) {
    if (session == nullptr) return std::string();
    int fd = -1;
    {
        FIX::Locker locker(session->*member(SessionMutex()));
        FIX::Responder* responder = session->*member(SessionResponder());
        if (responder == nullptr) return std::string();
        fd = connection_fd(responder);
    }
    if (fd < 0) return std::string();
    sockaddr_storage address;
    socklen_t length = sizeof(address);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return std::string();
    char text[INET6_ADDRSTRLEN] = {0};
    int port = 0;
    if (address.ss_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&address)->sin_addr, text, sizeof(text));
        port = ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
    } else if (address.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr, text, sizeof(text));
        port = ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
    }
    return with_port && text[0] ? std::string(text) + ":" + std::to_string(port) : std::string(text);
}

namespace {
// The value of `tag` in a raw FIX message, empty when absent.
std::string raw_field(const std::string& message, const char* tag) {
    std::string key = std::string("\001") + tag + "=";
    size_t start = message.find(key);
    if (start == std::string::npos) return std::string();
    start += key.size();
    size_t end = message.find('\001', start);
    return message.substr(start, end == std::string::npos ? std::string::npos : end - start);
}
}  // namespace

void LogonGateLog::onIncoming(const std::string& message) {
    inner_->onIncoming(message);
    if (message.find("\00135=A\001") == std::string::npos || raw_field(message, "141") != "Y") return;
    if (!engine_->reset_logon_admitted(client_, raw_field(message, "553"), raw_field(message, "554")))
        throw FIX::InvalidMessage("Logon with ResetSeqNumFlag=Y refused");
}

FIX::Log* LogonGateFactory::create(const FIX::SessionID& id) {
    FIX::Log* inner = inner_->create(id);
    int client = engine_->client_of(id);
    if (client < 0) return inner;
    std::lock_guard<std::mutex> lock(mutex_);
    gates_.emplace_back(new LogonGateLog(inner, engine_, client));
    return gates_.back().get();
}

void Engine::set_client_kill_reason(int session, const std::string& reason) {
    std::lock_guard<std::mutex> lock(lock_);
    if (session >= 0 && session < (int)clients_.size()) clients_[session]->kill_reason = reason;
}

// -- READS ------------------------------------------------------------------------------------------

int Engine::read_counters(int64_t* out, int size) const {
    const std::atomic<int64_t>* fields[] = {
        &counters_.received, &counters_.accepted, &counters_.rejected, &counters_.fills, &counters_.cancels,
        &counters_.replaces, &counters_.duplicate_fills, &counters_.reconciled, &counters_.unknown_venue_orders,
        &counters_.unknown_venue_reports, &counters_.callback_errors, &counters_.alarms, &counters_.messages_in,
        &counters_.status_requests, &counters_.late_venue_reports};
    int count = 0;
    for (auto* value : fields)
        if (count < size) out[count++] = value->load(std::memory_order_relaxed);
    for (int code = 0; code < 64 && count < size; ++code)
        out[count++] = counters_.rejected_by_code[code].load(std::memory_order_relaxed);
    return count;
}

int64_t Engine::read_stage(int stage, int64_t* buckets, int size) const {
    if (stage < 0 || stage >= STAGE_COUNT) return 0;
    for (int i = 0; i < size && i < StageHistogram::BUCKETS; ++i)
        buckets[i] = stages_[stage].buckets[i].load(std::memory_order_relaxed);
    return stages_[stage].count.load(std::memory_order_relaxed);
}

int64_t Engine::outbox_queued_bytes(bool venue, int index) const {
    return venue ? venues_[index]->outbox->queued_bytes() : clients_[index]->outbox->queued_bytes();
}

int64_t Engine::outbox_slow_count(bool venue, int index) const {
    return venue ? venues_[index]->outbox->slow_count() : clients_[index]->outbox->slow_count();
}

int64_t Engine::longest_callback_ns() const {
    int64_t now = monotonic_ns();
    int64_t longest = 0;
    for (const auto& slot : busy_since_) {
        int64_t since = slot.load(std::memory_order_relaxed);
        if (since != 0 && now - since > longest) longest = now - since;
    }
    return longest;
}

int64_t Engine::service_age_ns() const {
    int64_t beat = service_beat_ns_.load(std::memory_order_relaxed);
    return beat == 0 ? 0 : monotonic_ns() - beat;
}

int64_t Engine::order_count() {
    std::lock_guard<std::mutex> lock(lock_);
    return (int64_t)orders_.size();
}

int64_t Engine::live_order_count() {
    std::lock_guard<std::mutex> lock(lock_);
    int64_t count = 0;
    for (auto& entry : orders_) count += entry.second.in_book;
    return count;
}

std::vector<int64_t> Engine::live_order_ids() {
    std::lock_guard<std::mutex> lock(lock_);
    std::vector<int64_t> ids;
    for (auto& entry : orders_)
        if (entry.second.in_book) ids.push_back(entry.first);
    std::sort(ids.begin(), ids.end());
    return ids;
}

std::string Engine::describe_order(int64_t order_id) {
    std::lock_guard<std::mutex> lock(lock_);
    Order* order = find_order(order_id);
    if (order == nullptr) return EMPTY;
    const InstrumentConfig& spec = config_.instruments[order->instrument];
    std::string out;
    auto line = [&](const char* key, const std::string& value) {
        out += key;
        out += '=';
        out += value;
        out += '\n';
    };
    line("order_id", std::to_string(order->id));
    line("session", std::to_string(order->session));
    line("symbol", spec.symbol);
    line("side", std::string(1, order->side));
    line("ord_type", std::string(1, order->ord_type));
    line("qty_lots", std::to_string(order->qty_lots));
    line("price_ticks", std::to_string(order->price_ticks));
    line("cum_lots", std::to_string(order->cum_lots));
    line("cost", std::to_string(order->cost));
    line("status", std::string(1, order->status));
    line("visible_status", std::string(1, visible_status(*order)));
    line("in_book", order->in_book ? "1" : "0");
    line("cl_ord_id", order->cl_ord_id);
    line("venue_cl_ord_id", order->venue_cl_ord_id);
    line("venue_order_id", order->venue_order_id);
    line("cancel_pending", order->cancel.kind ? "1" : "0");
    line("replace_pending", order->replace.kind ? "1" : "0");
    return out;
}

// -- THE SERVICE THREAD -----------------------------------------------------------------------------

void Engine::wake_service() {
    uint64_t one = 1;
    ssize_t ignored = ::write(service_wake_fd_, &one, sizeof(one));
    (void)ignored;
}

// TLS sends block in SSL_write, maybe with the engine's lock held (a venue thread relaying to a TLS
// client): this thread takes no lock but the outboxes' own, and cuts a send blocked past the limit.
void Engine::send_watch_loop() {
    const int64_t stall_limit_ns = config_.stall_limit_ms * 1000000LL;
    std::vector<Outbox*> outboxes;
    for (auto& client : clients_) outboxes.push_back(client->outbox.get());
    for (auto& venue : venues_) outboxes.push_back(venue->outbox.get());
    while (!service_stop_.load()) {
        int64_t now = monotonic_ns();
        for (Outbox* outbox : outboxes) outbox->watch(now, stall_limit_ns);
        usleep(20000);
    }
}

void Engine::service_loop() {
    const int64_t stall_limit_ns = config_.stall_limit_ms * 1000000LL;
    int64_t next_log_flush = 0;
    std::vector<Outbox*> outboxes;
    std::vector<std::pair<bool, int>> owners;
    for (auto& client : clients_) {
        outboxes.push_back(client->outbox.get());
        owners.emplace_back(false, client->index);
    }
    for (auto& venue : venues_) {
        outboxes.push_back(venue->outbox.get());
        owners.emplace_back(true, venue->index);
    }
    std::vector<struct pollfd> fds;
    std::vector<Outbox*> polled;
    while (!service_stop_.load()) {
        service_beat_ns_.store(monotonic_ns(), std::memory_order_relaxed);
        fds.clear();
        polled.clear();
        fds.push_back({service_wake_fd_, POLLIN, 0});
        for (Outbox* outbox : outboxes) {
            int fd = outbox->pending_fd();
            if (fd >= 0) {
                fds.push_back({fd, POLLOUT, 0});
                polled.push_back(outbox);
            }
        }
        ::poll(fds.data(), fds.size(), 20);
        if (fds[0].revents & POLLIN) {
            uint64_t value;
            ssize_t ignored = ::read(service_wake_fd_, &value, sizeof(value));
            (void)ignored;
        }
        int64_t now = monotonic_ns();
        for (size_t i = 0; i < polled.size(); ++i) polled[i]->flush(now, stall_limit_ns);
        // Slow consumers found by a send or a flush: say so.
        for (size_t i = 0; i < outboxes.size(); ++i) {
            std::string reason = outboxes[i]->take_slow_reason();
            if (reason.empty()) continue;
            const std::string& name = owners[i].first ? venues_[owners[i].second]->config.name
                                                      : clients_[owners[i].second]->config.name;
            std::lock_guard<std::mutex> lock(lock_);
            alarm(FG_ALARM_SLOW_CONSUMER, std::string(owners[i].first ? "venue " : "client ") + name +
                  " disconnected as a slow consumer: " + reason);
        }
        std::deque<std::pair<int, int>> tasks;
        {
            std::lock_guard<std::mutex> lock(service_mutex_);
            tasks.swap(service_tasks_);
        }
        for (auto& task : tasks) {
            try {
                if (task.first == TASK_CLIENT_LOGOUT) {
                    ClientState& client = *clients_[task.second];
                    {
                        std::lock_guard<std::mutex> lock(lock_);
                        push_session_event(FG_EVENT_SESSION_LOGOUT, false, task.second, "");
                    }
                    if (client.config.cancel_on_disconnect && !client.logged_on.load())
                        cancel_all(task.second, CANCEL_ON_DISCONNECT, "cancel on disconnect");
                } else if (task.first == TASK_VENUE_LOGON) {
                    VenueState& venue = *venues_[task.second];
                    {
                        std::lock_guard<std::mutex> lock(lock_);
                        push_session_event(FG_EVENT_SESSION_LOGON, true, task.second, "");
                        if (venue.config.market_data) {
                            FIX::Message request = new_message("V");
                            request.setField(TAG_MD_REQ_ID, config_.token + "-MD" + std::to_string(next_internal_id_++));
                            request.setField(TAG_SUBSCRIPTION_REQUEST_TYPE, "1");
                            request.setField(TAG_MARKET_DEPTH, "1");
                            request.setField(TAG_MD_UPDATE_TYPE, "1");
                            for (const char* type : {"0", "1", "2"}) {
                                FIX::Group group(TAG_NO_MD_ENTRY_TYPES, TAG_MD_ENTRY_TYPE);
                                group.setField(TAG_MD_ENTRY_TYPE, type);
                                request.addGroup(group);
                            }
                            bool any = false;
                            for (const InstrumentConfig& instrument : config_.instruments) {
                                // Its own instruments, and those it backs up the quotes of.
                                if (instrument.venue != task.second && instrument.quote_backup != task.second) continue;
                                FIX::Group group(TAG_NO_RELATED_SYM, TAG_SYMBOL);
                                group.setField(TAG_SYMBOL, instrument.symbol);
                                request.addGroup(group);
                                any = true;
                            }
                            if (any) send_to_venue(venue, request, 0, 0);
                        }
                    }
                    reconcile(task.second);
                } else if (task.first == TASK_VENUE_LOGOUT) {
                    std::lock_guard<std::mutex> lock(lock_);
                    push_session_event(FG_EVENT_SESSION_LOGOUT, true, task.second, "");
                    set_venue_state(*venues_[task.second], FG_VENUE_DOWN, "logged out");
                }
            } catch (std::exception& error) {
                std::lock_guard<std::mutex> lock(lock_);
                alarm(FG_ALARM_INTERNAL_ERROR, std::string("service task failed: ") + error.what());
            }
        }
        // Quote sources to switch, and reconciliations that took too long (not ready, said once).
        {
            std::lock_guard<std::mutex> lock(lock_);
            check_quote_sources(realtime_ns());
            for (auto& venue : venues_) {
                if (venue->state.load() == FG_VENUE_RECONCILING && venue->logged_on.load() &&
                    venue->reconcile_deadline_ns != 0 && now > venue->reconcile_deadline_ns) {
                    std::string reason = "reconciliation unanswered after " +
                                         std::to_string(config_.reconcile_timeout_ms) + " ms (" +
                                         std::to_string(venue->reconcile_outstanding) + " status requests open)";
                    alarm(FG_ALARM_RECONCILIATION_REFUSED, "venue " + venue->config.name + " " + reason);
                    set_venue_state(*venue, FG_VENUE_REFUSED, reason);
                }
            }
        }
        if (masked_logs_ != nullptr && now >= next_log_flush) {
            masked_logs_->flush();
            next_log_flush = now + 50 * 1000000LL;
        }
    }
}

// -- BENCHMARKS -------------------------------------------------------------------------------------

namespace {
std::string wire(const std::string& sender, const std::string& target, int64_t seq, const std::string& msg_type,
                 const std::string& body) {
    std::string text = "35=" + msg_type + "\x01" + "49=" + sender + "\x01" + "56=" + target + "\x01" + "34=" +
                       std::to_string(seq) + "\x01" + "52=" + utc_timestamp(realtime_ns()) + "\x01" + body;
    std::string head = "8=FIX.4.4\x01" "9=" + std::to_string(text.size()) + "\x01";
    std::string message = head + text;
    unsigned sum = 0;
    for (unsigned char c : message) sum += c;
    char trailer[16];
    snprintf(trailer, sizeof(trailer), "10=%03u\x01", sum % 256);
    return message + trailer;
}
}  // namespace

int64_t Engine::bench_messages(int64_t count, int instrument, const std::string& price,
                               std::vector<int64_t>& samples) {
    if (started_ || clients_.empty() || venues_.empty() || instrument < 0 || instrument >= (int)config_.instruments.size())
        throw std::runtime_error("bench_messages needs an engine that is not started, with a client, a venue "
                                 "and an instrument");
    dry_sessions_ = true;
    ClientState& client = *clients_[0];
    VenueState& venue = *venues_[config_.instruments[instrument].venue];
    venue.logged_on.store(true);
    venue.state.store(FG_VENUE_READY);
    const InstrumentConfig& spec = config_.instruments[instrument];
    std::vector<fg_event> scratch(4096);
    samples.clear();
    samples.reserve((size_t)count);
    int64_t done = 0;
    std::string prefix = "B" + config_.token + "-";
    for (int64_t i = 0; i < count; ++i) {
        std::string cl_ord_id = prefix + std::to_string(i);
        std::string order_text = wire(client.config.comp_id, config_.comp_id, i + 1, "D",
                                      "11=" + cl_ord_id + "\x01" "55=" + spec.symbol + "\x01" "54=1\x01" "60=" +
                                      utc_timestamp(realtime_ns()) + "\x01" "38=" + format_units(1, spec.lot) +
                                      "\x01" "40=2\x01" "44=" + price + "\x01" "59=3\x01");
        int64_t started = monotonic_ns();
        FIX::Message order(order_text, false);
        fromApp(order, client.id);
        int64_t order_id = 0;
        {
            auto known = client.order_ids.find(cl_ord_id);
            if (known != client.order_ids.end()) order_id = known->second;
        }
        if (order_id == 0) break;                               // refused: the book or the ring said no
        std::string venue_id = gateway_order_id(order_id);
        std::string common = "37=V" + std::to_string(order_id) + "\x01" "11=" + venue_id + "\x01" "55=" + spec.symbol +
                             "\x01" "54=1\x01" "38=" + format_units(1, spec.lot) + "\x01" "44=" + price + "\x01";
        FIX::Message acked(wire(venue.config.comp_id, config_.comp_id, 2 * i + 1, "8",
                                common + "17=A" + std::to_string(i) + "\x01" "150=0\x01" "39=0\x01" "151=" +
                                format_units(1, spec.lot) + "\x01" "14=0\x01" "6=0\x01"), false);
        fromApp(acked, venue.id);
        FIX::Message canceled(wire(venue.config.comp_id, config_.comp_id, 2 * i + 2, "8",
                                   common + "17=C" + std::to_string(i) + "\x01" "150=4\x01" "39=4\x01" "151=0\x01"
                                   "14=0\x01" "6=0\x01"), false);
        fromApp(canceled, venue.id);
        samples.push_back(monotonic_ns() - started);
        ++done;
        // The state thread's part, outside the timing: keep the ring from filling.
        if (ring_.size() > 3000) drain(scratch.data(), (int64_t)scratch.size());
    }
    while (drain(scratch.data(), (int64_t)scratch.size()) > 0) {
    }
    dry_sessions_ = false;
    venue.logged_on.store(false);
    return done;
}

double bench_event_ring(int64_t count, int64_t batch) {
    EventRing ring(65536);
    std::mutex lock;                                            // the engine lock a producer holds
    std::atomic<bool> done{false};
    int64_t started = monotonic_ns();
    std::thread consumer([&]() {
        std::vector<fg_event> out((size_t)batch);
        int64_t received = 0;
        while (received < count) {
            int64_t got = ring.drain(out.data(), batch);
            if (got == 0) {
                if (!ring.overflow_empty_relaxed()) {
                    std::lock_guard<std::mutex> guard(lock);
                    got = ring.drain_overflow(out.data(), batch);
                }
                if (got == 0) ring.wait(1);
            }
            received += got;
        }
        done.store(true);
    });
    fg_event event;
    memset(&event, 0, sizeof(event));
    event.kind = FG_EVENT_ACKED;
    for (int64_t i = 0; i < count; ++i) {
        std::lock_guard<std::mutex> guard(lock);
        event.seq = i + 1;
        event.order_id = i + 1;
        std::atomic_thread_fence(std::memory_order_seq_cst);
        ring.push(event, false);
    }
    consumer.join();
    return (double)(monotonic_ns() - started) / (double)count;
}

}  // namespace fixgate
