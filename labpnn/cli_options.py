"""Command-line options that several ``labpnn`` commands share, declared once.

``run``, ``queue add``, ``schedule add``, ``station check`` and ``safe-off`` take the same
procedure parameters and station overrides; one declaration keeps their spelling and help
the same. Only click is imported here, so ``labpnn --help`` stays fast.
"""

from __future__ import annotations

import click

PARAMETERS = click.option(
    "--set", "sets", multiple=True, metavar="NAME=VALUE", help="Procedure parameter (repeatable)."
)
STATION_OVERRIDES = click.option(
    "--station-set",
    "station_sets",
    multiple=True,
    metavar="DOTTED.KEY=VALUE",
    help="Override one entry of the station config (repeatable).",
)
NOTE = click.option("--note", default="", help="Free text stored with the run.")
TAGS = click.option("--tag", "tags", multiple=True, help="Tag stored with the run (repeatable).")
