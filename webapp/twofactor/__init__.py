"""The two-step domain: challenges, sending and checking codes, recovery codes, phones. No HTTP here."""
