"""The operator CLI: `python -m webapp …` or the `webapp` console script. It calls the domain, never HTTP.

Read commands take --json. Every state change asks for confirmation unless --yes and writes an audit row naming
the operator (--operator, default the login name).
"""

from __future__ import annotations

import click

from webapp.cli.maintenance import check_config, prune
from webapp.cli.runtime import Runtime, default_operator
from webapp.cli.users import users


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--operator", default=default_operator, show_default="your login name", metavar="NAME",
              help="Who is acting, recorded in the audit rows.")
@click.pass_context
def main(ctx: click.Context, operator: str) -> None:
    """Operate a Two-step Accounts installation (settings come from the environment and .env, as for the app)."""
    ctx.obj = Runtime(operator=operator.strip()[:64] or "unknown")


main.add_command(users)
main.add_command(prune)
main.add_command(check_config)
