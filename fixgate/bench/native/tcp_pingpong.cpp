// See tcp_pingpong.h.
#include "tcp_pingpong.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace fixgate {
namespace bench {

namespace {

int64_t now_ns() {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

bool transfer(int fd, char* buffer, int bytes, bool sending) {
    int done = 0;
    while (done < bytes) {
        ssize_t count = sending ? send(fd, buffer + done, bytes - done, MSG_NOSIGNAL) : recv(fd, buffer + done, bytes - done, 0);
        if (count <= 0) {
            if (count < 0 && errno == EINTR) continue;
            return false;
        }
        done += (int)count;
    }
    return true;
}

sockaddr_in loopback(int port) {
    sockaddr_in address;
    memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

}  // namespace

int run_tcp_echo(int port, int message_bytes, double seconds, const std::string& ready_file) {
    int server = socket(AF_INET, SOCK_STREAM, 0);
    if (server < 0) return errno;
    int one = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address = loopback(port);
    if (bind(server, (sockaddr*)&address, sizeof(address)) != 0 || listen(server, 4) != 0) {
        int error = errno;
        close(server);
        return error;
    }
    if (!ready_file.empty()) {
        FILE* ready = fopen(ready_file.c_str(), "w");
        if (ready != nullptr) {
            fprintf(ready, "{\"port\": %d}\n", port);
            fclose(ready);
        }
    }
    int64_t deadline = seconds > 0 ? now_ns() + (int64_t)(seconds * 1e9) : INT64_MAX;
    std::vector<char> buffer((size_t)message_bytes);
    while (now_ns() < deadline) {
        struct pollfd wanted = {server, POLLIN, 0};
        if (poll(&wanted, 1, 200) <= 0) continue;
        int connection = accept(server, nullptr, nullptr);
        if (connection < 0) continue;
        setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        while (transfer(connection, buffer.data(), message_bytes, false) &&
               transfer(connection, buffer.data(), message_bytes, true)) {
        }
        close(connection);
    }
    close(server);
    return 0;
}

int run_tcp_pingpong(int port, int message_bytes, int64_t count, std::vector<int64_t>& samples) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in address = loopback(port);
    if (connect(fd, (sockaddr*)&address, sizeof(address)) != 0) {
        int error = errno;
        close(fd);
        return error;
    }
    std::vector<char> buffer((size_t)message_bytes, 'x');
    samples.clear();
    samples.reserve((size_t)count);
    for (int64_t i = 0; i < count; ++i) {
        int64_t started = now_ns();
        if (!transfer(fd, buffer.data(), message_bytes, true) || !transfer(fd, buffer.data(), message_bytes, false)) {
            int error = errno ? errno : EPIPE;
            close(fd);
            return error;
        }
        samples.push_back(now_ns() - started);
    }
    close(fd);
    return 0;
}

}  // namespace bench
}  // namespace fixgate
