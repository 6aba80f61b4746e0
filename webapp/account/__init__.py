"""Account endpoints: registration, the profile, password change and two-step settings."""
