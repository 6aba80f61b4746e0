"""Who a user is: usernames, password policy and hashing, accounts and the password step. No HTTP here."""
