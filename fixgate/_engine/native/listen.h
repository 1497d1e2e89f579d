// The address the client acceptor listens on.
//
// QuickFIX C++ 1.15.1 has no setting for it: its acceptors (plain and SSL) open their listening
// sockets with FIX::socket_createAcceptor(port, reuse), which binds every interface. listen.cpp
// defines that function in the engine's module. libquickfix calls it through its PLT, and the
// engine's module comes before libquickfix in the lookup scope of the libquickfix it loads, so the
// acceptor binds the address registered here for its port. Whether that took effect is checked
// once the acceptor listens (listening_address): a gateway that cannot honour its address refuses
// to start rather than listen on every interface.
#ifndef FIXGATE_ENGINE_LISTEN_H
#define FIXGATE_ENGINE_LISTEN_H

#include <string>

namespace fixgate {

// Listen on `address` (dotted IPv4; "" or "0.0.0.0": every interface) when an acceptor opens `port`.
// Throws std::invalid_argument for an address that is not IPv4.
void set_listen_address(int port, const std::string& address);

// The local address of this process's listening TCP socket on `port`, "" when there is none.
std::string listening_address(int port);

}  // namespace fixgate

#endif
