"""Mail: a durable outbox written inside units of work, a background sender, SMTP (aiosmtplib) or the dev outbox.

`webapp.mail.outbox.enqueue(s, to=…, template=…, context=…)` adds a mail to any unit of work; it is sent only if
that unit of work commits, and never while a request waits.
"""
