"""The venue simulator: price-time matching engine, background market maker, FIX acceptor."""
