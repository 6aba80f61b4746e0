"""Cross-cutting request security: the signed cookie, CSRF, headers, sessions, throttles and the audit log."""
