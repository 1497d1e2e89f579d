"""The firm: many gateways under one kill switch and one event stream, on NATS JetStream."""
