"""The dialer: a durable, paced queue of outbound calls in Postgres and the worker that places
them (docs/broadcast.md, "The dialer")."""
