"""Sign-in endpoints: the password step, the code step (or a recovery code), and sign-out."""
