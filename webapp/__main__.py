"""`python -m webapp …`: the operator CLI (see `python -m webapp --help`)."""

from webapp.cli import main

main(prog_name="webapp")
