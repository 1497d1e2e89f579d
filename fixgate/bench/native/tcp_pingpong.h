// The floor of a round trip on this machine: a fixed-size message echoed over loopback TCP, in C.
#ifndef FIXGATE_BENCH_TCP_PINGPONG_H
#define FIXGATE_BENCH_TCP_PINGPONG_H

#include <stdint.h>

#include <string>
#include <vector>

namespace fixgate {
namespace bench {

// Serve one connection at a time on 127.0.0.1:`port`, echoing `message_bytes`-byte messages, until
// `seconds` pass (or for ever when <= 0). Writes `ready_file` once listening. Returns 0, or errno.
int run_tcp_echo(int port, int message_bytes, double seconds, const std::string& ready_file);

// Send `count` messages of `message_bytes` one at a time to 127.0.0.1:`port`, each after the echo of
// the one before; fill `samples` with each round trip in ns (steady clock). Returns 0, or errno.
int run_tcp_pingpong(int port, int message_bytes, int64_t count, std::vector<int64_t>& samples);

}  // namespace bench
}  // namespace fixgate

#endif
