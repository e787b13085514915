"""Writes loan.xlsx, the workbook of the bundled `loan` recipe.

Run it again to get the same workbook: `python make_workbook.py [OUT]`. The model
is explained in README.md beside this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill

AUTHOR = "overnight"
MONEY = "#,##0.00"
WHOLE = "#,##0"
RATE = "0.000%"
INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")  # the usual yellow of "type here"
RESULT_FILL = PatternFill("solid", fgColor="E2EFDA")
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)

# The two choices overnight may change, with the values most people start from:
# the longest term and nothing extra.
INPUTS = [
    ("Term in years", 30, WHOLE,
     "How long the loan runs on its schedule. Shorter terms get a lower interest rate "
     "but a higher monthly payment."),
    ("Extra payment per month", 0, MONEY,
     "Paid on top of the scheduled payment every month; it goes straight to the principal "
     "and ends the loan early."),
]

# Facts of the offer and of the household; overnight never changes these.
ASSUMPTIONS = [
    ("Loan amount", 250000, WHOLE, "What is borrowed."),
    ("Interest rate at a term of zero", 0.046, RATE,
     "The lender's rate grows with the term: this rate plus the next line times the term in years."),
    ("Rate added per year of term", 0.00065, RATE,
     "So a 30-year loan costs 6.55% a year and a 15-year loan 5.58%, close to typical offers."),
    ("Most you can pay each month", 2000, MONEY,
     "The scheduled payment plus the extra payment must stay within this: the recipe's guard."),
]

# Inputs are Inputs!B2:B3, assumptions Assumptions!B2:B5 in the order above.
MODEL = [
    ("Interest rate", "=Assumptions!B3+Assumptions!B4*Inputs!B2", RATE, "The yearly rate for this term."),
    ("Monthly rate", "=B2/12", "0.0000%", None),
    ("Scheduled payment", "=PMT(B3,Inputs!B2*12,-Assumptions!B2)", MONEY,
     "The fixed monthly payment that repays the loan over the term."),
    ("Paid each month", "=B4+Inputs!B3", MONEY, "The scheduled payment plus the extra payment."),
    ("Months until it is repaid", "=NPER(B3,-B5,Assumptions!B2)", "0.0",
     "With the extra payment the loan ends before its term."),
    ("Total paid", "=B5*B6", MONEY, None),
    ("Total interest", "=B7-Assumptions!B2", MONEY,
     "Everything paid beyond the loan itself. This is the number the loan recipe minimises."),
    ("Years until it is repaid", "=B6/12", "0.0", None),
    ("Room left in the monthly limit", "=Assumptions!B5-B5", MONEY,
     "The most you can pay each month minus what is paid: the recipe's guard keeps it at zero or above."),
]


def build() -> Workbook:
    wb = Workbook()
    inputs = wb.active
    inputs.title = "Inputs"
    _title(inputs, "Loan choices", "overnight may change the yellow cells (B2:B3); everything else is computed.")
    for row, (label, value, fmt, note) in enumerate(INPUTS, start=2):
        _row(inputs, row, label, value, fmt, note, fill=INPUT_FILL)

    assumptions = wb.create_sheet("Assumptions")
    _title(assumptions, "Assumptions", "The offer and what the household can pay.")
    for row, (label, value, fmt, note) in enumerate(ASSUMPTIONS, start=2):
        _row(assumptions, row, label, value, fmt, note)

    model = wb.create_sheet("Model")
    _title(model, "What the loan costs", "Computed from the choices and the assumptions.")
    for row, (label, formula, fmt, note) in enumerate(MODEL, start=2):
        highlight = row in (8, 10)
        _row(model, row, label, formula, fmt, note, fill=RESULT_FILL if highlight else None, bold=highlight)
    return wb


def _title(ws, title: str, subtitle: str) -> None:
    ws["A1"] = title
    ws["A1"].font = TITLE
    ws["D1"] = subtitle
    ws.column_dimensions["A"].width = 40
    ws.column_dimensions["B"].width = 16


def _row(ws, row, label, value, fmt, note, fill=None, bold=False) -> None:
    ws.cell(row, 1, label)
    cell = ws.cell(row, 2, value)
    cell.number_format = fmt
    if fill:
        cell.fill = fill
    if bold:
        ws.cell(row, 1).font = BOLD
        cell.font = BOLD
    if note:
        cell.comment = Comment(note, AUTHOR)


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else Path(__file__).with_name("loan.xlsx")
    build().save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
