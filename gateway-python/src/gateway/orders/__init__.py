# The order workflow: domain (state machine, failures), the saga, idempotency and recovery.
