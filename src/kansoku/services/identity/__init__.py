"""identity: users, password hashes, login and JWT issuing."""

SERVICE = "identity"
