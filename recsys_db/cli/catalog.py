"""`recsys-db ingest-items`: the item catalog (attributes, category, availability)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsys_db.cli.common import JsonOption, report


def register(app: typer.Typer) -> None:
    app.command("ingest-items")(ingest_items)


def ingest_items(
    path: Annotated[Path, typer.Argument(help="CSV with a header: item_id, optional "
                                              "category_id and active, any attribute columns.")],
    as_json: JsonOption = False,
) -> None:
    """Load the item catalog: attributes (every other column) into recsys.items.attributes,
    category and active when given. Any bad row rejects the whole file."""
    from recsys_db.ingest.items import load_items

    result = load_items(path)
    report(result, as_json,
           f"{result.source}: {result.rows_read:,} rows read; {result.new_items:,} new items, "
           f"{result.updated_items:,} updated, {result.new_categories:,} new categories "
           f"({result.seconds:.1f} s)")
