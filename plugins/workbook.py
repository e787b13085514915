"""Workbooks for the `spreadsheet` surface and the `cell` metric: cell addresses, the text
view of editable cells, reading with openpyxl, and writing new values into a copy.

The view lists one editable cell a line, with the label found beside it:

    Inputs!B2 = 15    # Price per unit
    '📋 Overview'!C9 = 12    # Loan period
    Inputs!B5 = "monthly"    # Billing

A sheet name is quoted the way Excel quotes it; text values are JSON strings; the
text after `#` is a comment, so a view read back and rendered again is the same text.

Writing never goes through openpyxl's save: it would drop charts, images and other
parts openpyxl does not read. Only the changed cells' XML is rewritten; every other
byte of the file is copied as it was. A formula keeps its formula and gets the value
the engine computed (plugins/engine.py), so a reader without a calculation engine
sees numbers, and the spreadsheet program still recalculates on opening.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIXES = (".xlsx", ".xlsm")
SEPARATOR = "    # "  # between a cell's value and its label, always the same so views compare

# -- addresses ------------------------------------------------------------------------

_QUOTED = r"'(?P<quoted>(?:[^']|'')+)'"
_BARE = r"(?P<bare>[^\s'!=#\"]+)"
_CELL = r"\$?(?P<col>[A-Za-z]{1,3})\$?(?P<row>[0-9]{1,7})"
REF = re.compile(rf"(?:{_QUOTED}|{_BARE})!{_CELL}")
_PLAIN_SHEET = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_LOOKS_LIKE_CELL = re.compile(r"[A-Za-z]{1,3}[0-9]+|[Rr][0-9]*[Cc][0-9]*")
MAX_ROW, MAX_COL = 1_048_576, 16_384


@dataclass(frozen=True)
class Ref:
    sheet: str
    cell: str  # "B2": upper case, no dollar signs

    def __str__(self) -> str:
        return self.text

    @functools.cached_property
    def text(self) -> str:
        """The address as written (worked out once: a run writes each a few times an experiment)."""
        return format_ref(self.sheet, self.cell)

    @functools.cached_property
    def key(self) -> tuple[str, str]:
        """Sheet names compare without case, as in Excel."""
        return self.sheet.casefold(), self.cell


def parse_ref(text: str) -> Ref | None:
    """`Inputs!B2`, `'Cash flow'!$G$14` -> Ref; None when it is not a cell address."""
    m = REF.fullmatch(text.strip())
    if not m:
        return None
    return _ref_of(m)


def _ref_of(m: re.Match) -> Ref | None:
    sheet = m["quoted"].replace("''", "'") if m["quoted"] is not None else m["bare"]
    col, row = m["col"].upper(), int(m["row"])
    if not (1 <= row <= MAX_ROW and column_index(col) <= MAX_COL):
        return None
    return Ref(sheet, f"{col}{row}")


def format_ref(sheet: str, cell: str) -> str:
    if _PLAIN_SHEET.fullmatch(sheet) and not _LOOKS_LIKE_CELL.fullmatch(sheet):
        return f"{sheet}!{cell}"
    return "'" + sheet.replace("'", "''") + f"'!{cell}"


def column_index(col: str) -> int:
    n = 0
    for ch in col.upper():
        n = n * 26 + ord(ch) - 64
    return n


def split_cell(cell: str) -> tuple[int, int]:
    """"B2" -> (row 2, column 2)."""
    m = re.fullmatch(r"([A-Z]+)([0-9]+)", cell)
    return int(m[2]), column_index(m[1])


# -- values -----------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_INTEGER = re.compile(r"[-+]?[0-9]+")


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return format_value(item())
    raise TypeError(f"a cell cannot hold {value!r}")


def parse_value(text: str) -> Any:
    """The inverse of format_value; raises ValueError with a reason."""
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"{text} is not a valid quoted text") from None
        if not isinstance(value, str):
            raise ValueError(f"{text} is not a valid quoted text")
        return value
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        return float(text)
    raise ValueError(f"{text} is not a number, true/false, or a \"quoted text\"")


def same_value(a: Any, b: Any) -> bool:
    """Equal as cell values: 3 and 3.0 are the same number, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


# -- the view ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    ref: Ref
    value: Any
    number: int  # line number in the view, from 1


def render(cells: list[tuple[Ref, Any, str]]) -> str:
    """The view of (ref, value, label) triples, one a line."""
    out = []
    for ref, value, label in cells:
        line = f"{ref} = {format_value(value)}"
        out.append(f"{line}{SEPARATOR}{label}" if label else line)
    return "\n".join(out) + "\n"


def parse(view: str) -> tuple[list[Line], list[str]]:
    """The cells a view sets, and a sentence for each line that cannot be read."""
    lines, problems = [], []
    decoder = json.JSONDecoder()
    for number, raw in enumerate(view.splitlines(), 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        m = re.match(rf"(?:{_QUOTED}|{_BARE})!{_CELL}\s*=\s*", text)
        ref = _ref_of(m) if m else None
        if ref is None:
            problems.append(f"line {number} is not `Sheet!A1 = value`: {_short(text)}")
            continue
        rest = text[m.end():]
        if rest.startswith('"'):
            try:
                value, end = decoder.raw_decode(rest)
            except json.JSONDecodeError:
                problems.append(f"line {number}: the quoted text of {ref} is not closed or not valid")
                continue
            token, tail = rest[:end], rest[end:]
        else:
            token = re.match(r"[^\s#]*", rest)[0]
            tail = rest[len(token):]
        if tail.strip() and not tail.strip().startswith("#"):
            problems.append(f"line {number}: unexpected text after the value of {ref}: {_short(tail.strip())}")
            continue
        if not token:
            problems.append(f"line {number}: {ref} has no value after '='")
            continue
        try:
            value = parse_value(token)
        except ValueError as exc:
            problems.append(f"line {number}: {ref}: {exc}")
            continue
        lines.append(Line(ref, value, number))
    return lines, problems


def parse_kept(view: str) -> tuple[list[Line], list[str]]:
    """`parse`, remembered for the latest views: a run reads each candidate several times (its
    problems, its diff, its metric and guards). Fresh lists each call, so callers may add to them."""
    lines, problems = _parse_kept(view)
    return list(lines), list(problems)


@functools.lru_cache(maxsize=64)
def _parse_kept(view: str) -> tuple[tuple[Line, ...], tuple[str, ...]]:
    lines, problems = parse(view)
    return tuple(lines), tuple(problems)


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


# -- reading -----------------------------------------------------------------------------


class WorkbookError(Exception):
    """A workbook that cannot be read; the message is a sentence fragment about the file."""


def check_file(path: Path) -> None:
    """Why a file is not a readable .xlsx workbook, before openpyxl gives a cryptic error."""
    if not path.exists():
        raise WorkbookError(f"{path} does not exist")
    if path.is_dir():
        raise WorkbookError(f"{path} is a folder, not a workbook")
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise WorkbookError(f"{path} is an old .xls workbook; open it in a spreadsheet program and save it as .xlsx")
    if suffix not in SUFFIXES:
        raise WorkbookError(f"{path} is not an .xlsx workbook (its name ends in {suffix or 'nothing'!r})")
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise WorkbookError(
            f"{path} is password-protected (encrypted) or an old .xls file renamed to .xlsx; "
            f"save an unprotected .xlsx copy"
        )
    if not zipfile.is_zipfile(path):
        raise WorkbookError(f"{path} is not an .xlsx workbook: it is not a zip archive (a CSV or text file renamed to .xlsx?)")
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise WorkbookError(f"{path} is a damaged zip archive ({exc})") from None
    if bad:
        raise WorkbookError(f"{path} is damaged: its part {bad} does not match its checksum")
    if "[Content_Types].xml" not in names or not any(n.endswith("workbook.xml") for n in names):
        raise WorkbookError(f"{path} is a zip archive but not an .xlsx workbook (it has no workbook part)")


def load(path: Path):
    """The workbook in openpyxl, formulas as text; WorkbookError when it cannot be read."""
    import warnings

    check_file(path)
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "extension is not supported": openpyxl only reads here
            return load_workbook(path, data_only=False, keep_links=False)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise WorkbookError(f"{path} cannot be read as a workbook ({type(exc).__name__}: {exc})") from None


def sheet_named(wb, name: str):
    """The worksheet of that name, compared without case as Excel does; None when absent."""
    for ws in wb.worksheets:
        if ws.title.casefold() == name.casefold():
            return ws
    return None


def is_formula(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith("=")
    return type(value).__name__ in ("ArrayFormula", "DataTableFormula")


def formula_text(value: Any) -> str:
    text = getattr(value, "text", value)
    return text if isinstance(text, str) else str(text)


def label_of(ws, cell: str) -> str:
    """The text beside a cell: the nearest filled cell to its left if that is text, else the
    nearest filled cell above if that is text; "" when neither is."""
    row, col = split_cell(cell)
    for cells in (((row, c) for c in range(col - 1, max(0, col - 21), -1)),
                  ((r, col) for r in range(row - 1, max(0, row - 51), -1))):
        for r, c in cells:
            value = ws.cell(r, c).value
            if value is None or value == "":
                continue
            if isinstance(value, str) and not value.startswith("="):
                return _tidy_label(value)
            break
    return ""


def _tidy_label(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 70 else text[:67] + "..."


# -- writing -----------------------------------------------------------------------------

_NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CELL_EL = re.compile(r"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)c(?P<attrs>\s[^>]*?)?(?:/>|>(?P<body>.*?)</(?P=p)c>)", re.S)
_ATTR_T = re.compile(r'\s+(?:t|vm)="[^"]*"')


class Patcher:
    """A workbook held in memory, ready to write copies of itself with new cell values.

    Each formula of a copy holds the value computed for it (`results`); without results
    its cached value is dropped, as it no longer holds. Either way the spreadsheet program
    is asked to recalculate on opening."""

    def __init__(self, path: Path):
        check_file(path)
        with zipfile.ZipFile(path) as z:
            self.entries = [(info, z.read(info)) for info in z.infolist()]
        self.parts = {info.filename: i for i, (info, _) in enumerate(self.entries)}
        self.workbook_part, self.sheets = self._sheet_parts()
        self.texts: dict[str, str] = {p: self._text(p) for p in self.sheets.values() if p in self.parts}
        self.calculation = _recalculate_on_load(self._text(self.workbook_part))
        self._dropped: dict[str, str] | None = None  # the sheets without cached results, made once

    def write(self, values: dict[Ref, Any], *, compress: bool = True, results: "Results | None" = None) -> bytes:
        """The workbook's bytes with these values. `results`: (fresh, fixed) from
        engine.Recalculation.values. `compress=False` stores every part as is: quicker,
        for copies that live only as long as one measurement."""
        if results is None:
            if self._dropped is None:
                self._dropped = {part: _drop_cached_results(text) for part, text in self.texts.items()}
            texts = dict(self._dropped)
        else:
            texts = {part: _set_results(text, *self._by_sheet(part, results)) for part, text in self.texts.items()}
        texts[self.workbook_part] = self.calculation
        by_part: dict[str, dict[str, Any]] = {}
        for ref, value in values.items():
            part = self.sheets.get(ref.sheet.casefold())
            if part is None or part not in texts:
                raise WorkbookError(f"the workbook has no sheet {ref.sheet!r}")
            by_part.setdefault(part, {})[ref.cell] = value
        for part, cells in by_part.items():
            texts[part] = _set_cells(texts[part], cells)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            for info, data in self.entries:
                if info.filename in texts:
                    data = texts[info.filename].encode("utf-8")
                copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                copy.compress_type = info.compress_type if compress else zipfile.ZIP_STORED
                copy.external_attr = info.external_attr
                copy.create_system = info.create_system
                z.writestr(copy, data)
        return out.getvalue()

    def formulas(self) -> int:
        """How many formula cells the workbook has."""
        return sum(len(re.findall(r"<(?:[A-Za-z_][\w.-]*:)?f[\s>/]", text)) for text in self.texts.values())

    def _by_sheet(self, part: str, results: "Results") -> tuple[dict[str, Any], dict[str, Any]]:
        names = {name for name, p in self.sheets.items() if p == part}
        return tuple({cell: v for (sheet, cell), v in found.items() if sheet in names} for found in results)

    def _text(self, part: str) -> str:
        try:
            return self.entries[self.parts[part]][1].decode("utf-8")
        except UnicodeDecodeError:
            raise WorkbookError(f"its part {part} is not UTF-8 XML, which overnight cannot edit safely") from None

    def _sheet_parts(self) -> tuple[str, dict[str, str]]:
        """The workbook part, and sheet name (case-folded) -> its XML part in the zip."""
        from xml.etree import ElementTree  # here: a run that reads no workbook need not load it

        root = ElementTree.fromstring(self.entries[self.parts["_rels/.rels"]][1]) if "_rels/.rels" in self.parts else None
        workbook = "xl/workbook.xml"
        for rel in (root if root is not None else []):
            if rel.get("Type", "").endswith("/officeDocument"):
                workbook = rel.get("Target", workbook).lstrip("/")
        if workbook not in self.parts:
            raise WorkbookError(f"the workbook part {workbook} is missing")
        folder = workbook.rpartition("/")[0]
        rels_part = f"{folder}/_rels/{workbook.rpartition('/')[2]}.rels"
        targets = {}
        if rels_part in self.parts:
            for rel in ElementTree.fromstring(self.entries[self.parts[rels_part]][1]):
                target = rel.get("Target", "")
                targets[rel.get("Id")] = target.lstrip("/") if target.startswith("/") else _join(folder, target)
        sheets = {}
        book = ElementTree.fromstring(self.entries[self.parts[workbook]][1])
        for el in book.iter():
            if el.tag.endswith("}sheet"):
                rid = el.get(f"{{{_NS_REL}}}id")
                if rid in targets:
                    sheets[el.get("name", "").casefold()] = targets[rid]
        return workbook, sheets


def _join(folder: str, target: str) -> str:
    parts = (folder.split("/") if folder else []) + target.split("/")
    out: list[str] = []
    for p in parts:
        if p == "..":
            if out:
                out.pop()
        elif p and p != ".":
            out.append(p)
    return "/".join(out)


def _drop_cached_results(xml: str) -> str:
    def strip(m: re.Match) -> str:
        body = m["body"]
        if body is None or f"<{m['p']}f" not in body:
            return m[0]
        p = m["p"]
        body = re.sub(rf"<{p}v\s*/>|<{p}v(?:\s[^>]*)?>.*?</{p}v>", "", body, flags=re.S)
        attrs = _ATTR_T.sub("", m["attrs"] or "")
        return f"<{p}c{attrs}>{body}</{p}c>"

    return _CELL_EL.sub(strip, xml)


Results = tuple  # (fresh, fixed): {(case-folded sheet, cell): value}, see engine.Recalculation.values


def _set_results(xml: str, fresh: dict[str, Any], fixed: dict[str, Any]) -> str:
    """Each formula's cached value: `fresh` ones replace it (None drops it: the engine could
    not compute a value that still holds); `fixed` ones fill it where the file has none."""
    if not fresh and not fixed:
        return xml

    def put(m: re.Match) -> str:
        attrs, body, p = m["attrs"] or "", m["body"] or "", m["p"]
        r = re.search(r'\sr="([^"]+)"', attrs)
        cell = r[1].replace("$", "").upper() if r else None
        formula = re.search(rf"<{p}f\b[^>]*/>|<{p}f\b[^>]*>.*?</{p}f>", body, re.S)
        if cell in fresh:
            value = fresh[cell]
        elif formula and cell in fixed and not re.search(rf"<{p}v(?:\s[^>]*)?>[^<]+</{p}v>", body):
            value = fixed[cell]
        else:
            return m[0]
        kind, text = _result(value)
        attrs = _ATTR_T.sub("", attrs) + (f' t="{kind}"' if kind else "")
        held = f"<{p}v>{text}</{p}v>" if text is not None else ""
        # An array formula's other cells hold only a value; a formula cell keeps its formula first.
        rest = formula[0] if formula else ""
        tail = re.sub(rf"<{p}f\b[^>]*/>|<{p}f\b[^>]*>.*?</{p}f>|<{p}v\s*/>|<{p}v(?:\s[^>]*)?>.*?</{p}v>|<{p}is>.*?</{p}is>",
                      "", body, flags=re.S)
        return f"<{p}c{attrs}>{rest}{held}{tail}</{p}c>"

    return _CELL_EL.sub(put, xml)


def escape(text: str) -> str:
    """XML's three characters, as xml.sax.saxutils.escape does (not imported: it loads urllib)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _result(value: Any) -> tuple[str, str | None]:
    """A computed value as a cell's type attribute and cached text."""
    if value is None:
        return "", None
    if isinstance(value, bool):
        return "b", str(int(value))
    if isinstance(value, (int, float)):
        return ("", _xml_number(value)) if math.isfinite(value) else ("e", "#NUM!")
    code = getattr(value, "code", None)  # engine.Error
    if isinstance(code, str):
        return "e", escape(code)
    return "str", escape(str(value))


def _set_cells(xml: str, cells: dict[str, Any]) -> str:
    done = set()

    def put(m: re.Match) -> str:
        attrs = m["attrs"] or ""
        r = re.search(r'\sr="([^"]+)"', attrs)
        cell = r[1].replace("$", "").upper() if r else None
        if cell not in cells:
            return m[0]
        done.add(cell)
        p, value = m["p"], cells[cell]
        attrs = _ATTR_T.sub("", attrs)
        if isinstance(value, bool):
            return f'<{p}c{attrs} t="b"><{p}v>{int(value)}</{p}v></{p}c>'
        if isinstance(value, (int, float)):
            return f"<{p}c{attrs}><{p}v>{_xml_number(value)}</{p}v></{p}c>"
        text = escape(str(value))
        return f'<{p}c{attrs} t="inlineStr"><{p}is><{p}t xml:space="preserve">{text}</{p}t></{p}is></{p}c>'

    xml = _CELL_EL.sub(put, xml)
    missing = set(cells) - done
    if missing:
        raise WorkbookError(f"the cells {', '.join(sorted(missing))} hold nothing in the workbook, so they cannot be set")
    return xml


def _xml_number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise WorkbookError(f"{value} cannot be stored in a cell")
    return repr(float(value))


def _recalculate_on_load(xml: str) -> str:
    m = re.search(r"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)calcPr\b(?P<attrs>[^>]*?)(?P<end>/?>)", xml)
    if m:
        attrs = re.sub(r'\s+fullCalcOnLoad="[^"]*"', "", m["attrs"])
        return xml[: m.start()] + f'<{m["p"]}calcPr{attrs} fullCalcOnLoad="1"{m["end"]}' + xml[m.end():]
    root = re.search(r"<(?P<p>(?:[A-Za-z_][\w.-]*:)?)workbook\b", xml)
    p = root["p"] if root else ""
    # calcPr comes right after definedNames (or sheets) in the schema's order.
    for anchor in (rf"</{p}definedNames>", rf"<{p}definedNames\s*/>", rf"</{p}externalReferences>", rf"</{p}sheets>"):
        a = re.search(anchor, xml)
        if a:
            return xml[: a.end()] + f'<{p}calcPr fullCalcOnLoad="1"/>' + xml[a.end():]
    return xml
