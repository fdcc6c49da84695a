"""Who may see and do what: principals, roles, the one `Scope` resolver, accounts, sessions,
displays, ingest keys, the audit log and the HTTP guards that enforce them."""
