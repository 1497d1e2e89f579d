// See listen.h.
#include "listen.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <stdexcept>

#include "quickfix/Utility.h"

namespace fixgate {

namespace {
std::mutex addresses_mutex;
std::map<int, in_addr> addresses;      // port -> address to bind (absent: every interface)
}  // namespace

void set_listen_address(int port, const std::string& address) {
    in_addr parsed;
    parsed.s_addr = htonl(INADDR_ANY);
    if (!address.empty() && inet_pton(AF_INET, address.c_str(), &parsed) != 1)
        throw std::invalid_argument("not an IPv4 address: " + address);
    std::lock_guard<std::mutex> lock(addresses_mutex);
    addresses[port] = parsed;
}

std::string listening_address(int port) {
    DIR* fds = opendir("/proc/self/fd");
    if (fds == nullptr) return std::string();
    std::string found;
    for (dirent* entry = readdir(fds); entry != nullptr && found.empty(); entry = readdir(fds)) {
        char* end = nullptr;
        long fd = strtol(entry->d_name, &end, 10);
        if (end == entry->d_name || *end != '\0') continue;
        int listening = 0;
        socklen_t size = sizeof(listening);
        if (getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || !listening) continue;
        sockaddr_in local;
        socklen_t length = sizeof(local);
        if (getsockname((int)fd, reinterpret_cast<sockaddr*>(&local), &length) != 0 || local.sin_family != AF_INET ||
            ntohs(local.sin_port) != port)
            continue;
        char text[INET_ADDRSTRLEN] = {0};
        inet_ntop(AF_INET, &local.sin_addr, text, sizeof(text));
        found = text;
    }
    closedir(fds);
    return found;
}

}  // namespace fixgate

namespace FIX {

// QuickFIX's own opens the same socket on INADDR_ANY; this one on the address registered for the port.
int socket_createAcceptor(int port, bool reuse) {
    port &= 0xFFFF;                 // QuickFIX reads the port into a short: 45735 arrives as -19801
    in_addr address;
    address.s_addr = htonl(INADDR_ANY);
    {
        std::lock_guard<std::mutex> lock(fixgate::addresses_mutex);
        auto found = fixgate::addresses.find(port);
        if (found != fixgate::addresses.end()) address = found->second;
    }
    int fd = ::socket(PF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (reuse) {
        int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    }
    sockaddr_in local = {};
    local.sin_family = AF_INET;
    local.sin_port = htons((uint16_t)port);
    local.sin_addr = address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 || ::listen(fd, SOMAXCONN) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace FIX
