"""The native order path: the gateway's sessions and per-message work in C++ over QuickFIX C++."""
