"""Uploaded code lists: a CSV file whose header names one column of codes, one code a row
(seed 003: `productCode` for products, `loyaltyId` for audiences; seed 004: `code` for a
reward's code stock).

Reads files and nothing else; problems are returned as data, naming the file and the row as a
spreadsheet shows it (row 1 is the header), never raised.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from processors.contract.offer_definition import LIST_MAX

PRODUCT_CODE_HEADER = "productCode"
"""The header of an uploaded product list (seed 003, "List-based targeting for products")."""

REWARD_CODE_HEADER = "code"
"""The header of a reward's uploaded code stock (`loyalty rewards codes add`)."""

CODE_LENGTH_MAX = 128
"""Codes are contract ids: 1 to 128 printable ASCII characters."""


@dataclass(frozen=True)
class CodeList:
    """The codes read, in file order without repeats, and what was wrong or worth a look."""

    codes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_code_list(
    path: Path, header: str = PRODUCT_CODE_HEADER, *, count_max: int | None = LIST_MAX
) -> CodeList:
    """The codes in the `header` column of the CSV file at `path`.

    Blank rows are skipped and other columns ignored; a repeated code is kept once, with a
    warning; more than `count_max` codes (None: no bound, the caller splits them) is an error,
    as is a file without the header.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return CodeList(errors=[f"{path}: no such file"])
    except (OSError, UnicodeDecodeError) as error:
        return CodeList(errors=[f"{path}: cannot be read as UTF-8 text: {error}"])
    return read_code_text(text, str(path), header, count_max=count_max)


def read_code_text(
    text: str, path: str, header: str = PRODUCT_CODE_HEADER, *, count_max: int | None = LIST_MAX
) -> CodeList:
    """The codes of a CSV text already read (an upload), named `path` in problems."""
    numbered = enumerate(csv.reader(text.splitlines()), start=1)
    rows = [(n, [cell.strip() for cell in row]) for n, row in numbered if "".join(row).strip()]
    if not rows:
        return CodeList(errors=[f"{path}: empty file; expected a {header} header, one code a row"])
    header_row, names = rows[0]
    if header not in names:
        near = [name for name in names if name.lower() == header.lower()]
        found = f"spelled {near[0]!r}" if near else f"found {','.join(names)!r}"
        return CodeList(
            errors=[
                f"{path} row {header_row}: no {header} header ({found}); the first row names "
                f"the column: {header}"
            ]
        )
    column = names.index(header)
    first_row: dict[str, int] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for number, row in rows[1:]:
        code = row[column] if column < len(row) else ""
        if not code:
            errors.append(f"{path} row {number}: no code in the {header} column")
        elif not (code.isascii() and code.isprintable()) or len(code) > CODE_LENGTH_MAX:
            errors.append(
                f"{path} row {number}: {code[:40]!r} is not a code: at most {CODE_LENGTH_MAX} "
                "printable ASCII characters"
            )
        elif code in first_row:
            repeated = f"{code!r} repeats row {first_row[code]}; kept once"
            warnings.append(f"{path} row {number}: {repeated}")
        else:
            first_row[code] = number
    if not first_row and not errors:
        errors.append(f"{path}: no codes under the {header} header")
    if count_max is not None and len(first_row) > count_max:
        errors.append(f"{path}: {len(first_row)} codes, at most {count_max}")
    return CodeList(list(first_row), errors, warnings)
