"""Accounts: registration, sign-in, sign-out and the profile page."""
