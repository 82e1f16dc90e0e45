"""worker: event functions: e-mails, thumbnails, reports."""

SERVICE = "worker"
