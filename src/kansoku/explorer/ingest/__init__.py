"""ingest: the OTLP/HTTP receiver (`routes`) and the decoding of export requests into
the store's rows (`otlp`)."""
