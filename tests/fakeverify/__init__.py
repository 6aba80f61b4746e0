"""A stateful fake of Twilio Verify v2 on 127.0.0.1 for tests and its pytest plugin."""
