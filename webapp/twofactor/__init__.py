"""Optional SMS two-factor authentication over Twilio Verify: enrollment, the login code step, step-up."""
