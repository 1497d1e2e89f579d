"""Domain logic without QuickFIX: order state, OMS, positions, risk-state machine, journal, agents."""
