"""Turning stock levels and product details into the inventory report, as CSV and JSON.

Pure: no I/O. `service.InventoryReports` fetches the data and stores what this makes.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

INVENTORY = "inventory"

#: The report's columns, in order: the CSV header and the keys of each JSON item.
COLUMNS = ("product_id", "sku", "name", "category", "on_hand", "reserved", "available",
           "low_stock_threshold", "status", "low_stock")

#: A spreadsheet runs a cell that starts with one of these as a formula; product names
#: are typed by people, so such cells are written with a leading apostrophe (OWASP's
#: advice against CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RenderedReport:
    """One report, ready to store."""

    row_count: int
    low_stock_count: int
    csv: str
    document: dict[str, Any]


def inventory_rows(levels: list[dict[str, Any]], products: dict[int, dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    """One row per stock level (inventory's `StockLevel`), with the product's SKU, name
    and category from catalog (`ProductOut`); None for a product catalog no longer has.
    Sorted by product id."""
    rows = []
    for level in sorted(levels, key=lambda item: int(item["product_id"])):
        product = products.get(int(level["product_id"]))
        category = product.get("category") if product else None
        rows.append({
            "product_id": int(level["product_id"]),
            "sku": product["sku"] if product else None,
            "name": product["name"] if product else None,
            "category": category["name"] if category else None,
            "on_hand": int(level["on_hand"]),
            "reserved": int(level["reserved"]),
            "available": int(level["available"]),
            "low_stock_threshold": int(level["low_stock_threshold"]),
            "status": str(level["status"]),
            "low_stock": bool(level["low_stock"]),
        })
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return f"'{text}" if isinstance(value, str) and text.startswith(_FORMULA_STARTS) else text


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV with a header line (RFC 4180: CRLF line ends, quotes as needed)."""
    output = io.StringIO()
    writer = csv.writer(output)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[column]) for column in COLUMNS])
    return output.getvalue()


def render_inventory(report_id: uuid.UUID, created_at: datetime,
                     levels: list[dict[str, Any]], products: dict[int, dict[str, Any]]
                     ) -> RenderedReport:
    """The inventory report: every product's stock, with its low-stock count."""
    rows = inventory_rows(levels, products)
    low_stock = sum(1 for row in rows if row["low_stock"])
    document = {"id": str(report_id), "kind": INVENTORY,
                "created_at": created_at.isoformat(), "row_count": len(rows),
                "low_stock_count": low_stock, "columns": list(COLUMNS), "items": rows}
    return RenderedReport(len(rows), low_stock, to_csv(rows), document)
