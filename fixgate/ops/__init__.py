"""Operations: metrics, structured logs, the admin HTTP API."""
