"""The embedded stack: real PostgreSQL, NATS and Valkey from wheels, every kansoku
service as its own process, and the supervisor that starts, watches and stops them."""
