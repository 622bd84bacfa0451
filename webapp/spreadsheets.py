"""The one CSV writer of every export: cells a spreadsheet would run as a formula are neutralised.

OWASP "CSV injection": Excel, LibreOffice and Google Sheets treat a cell that starts with `=`, `+`,
`-`, `@`, a tab or a carriage return as a formula, so a visit label such as `=HYPERLINK(...)` typed by
one user would run on the machine of the coordinator who opens the export. Such a cell is written with
a leading single quote, which spreadsheets show as plain text. Numbers stay numbers: a value that is a
plain decimal number (`-0.25`, `+3`, `1e-5`) cannot be a formula and is written unchanged, so signed
figures in the exports still sort and sum.
"""

import csv
import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise_cell(value: Any) -> Any:
    """The value as a spreadsheet will show it, never run it; non-text values are returned as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeCsvWriter:
    """`csv.writer` whose rows pass through `neutralise_cell`; `writerow` returns what csv's does
    (the line written, for streaming responses through a pseudo-buffer)."""

    def __init__(self, stream: Any, **options: Any) -> None:
        self._writer = csv.writer(stream, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralise_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeCsvDictWriter:
    """`csv.DictWriter` with the same neutralisation."""

    def __init__(self, stream: Any, fieldnames: Iterable[str], **options: Any) -> None:
        self._writer = csv.DictWriter(stream, fieldnames=list(fieldnames), **options)

    def writeheader(self) -> Any:
        return self._writer.writeheader()

    def writerow(self, row: Mapping[str, Any]) -> Any:
        return self._writer.writerow({key: neutralise_cell(value) for key, value in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)
