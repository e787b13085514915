"""Writes pricing.xlsx, the workbook of the bundled `pricing` recipe and of `overnight demo`.

Run it again to get the same workbook: `python make_workbook.py [OUT]`. The model and its
known optimum are explained in README.md beside this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

AUTHOR = "overnight"
MONEY = '#,##0.00'
WHOLE = '#,##0'
PERCENT = '0%'
INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")  # the usual yellow of "type here"
RESULT_FILL = PatternFill("solid", fgColor="E2EFDA")
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
THIN = Side(style="thin", color="999999")

# The three inputs overnight may change, with the values the demo starts from:
# a price a little too low, a small discount and a timid ad budget.
INPUTS = [
    ("Price per unit", 15, MONEY,
     "The list price of one unit, before the launch discount."),
    ("Launch discount", 0.05, PERCENT,
     "A visible discount off the list price. Up to 20% off it draws extra buyers "
     "beyond what the lower price alone explains; past that, buyers start to doubt the product."),
    ("Ad spend per month", 2000, WHOLE,
     "Money spent on ads every month. Ads lift demand with diminishing returns."),
]

# Facts about the market and the business; overnight never changes these.
ASSUMPTIONS = [
    ("Buyers per month at a price of zero", 3000, WHOLE,
     "The size of the market: how many units a month would go if the product were free (before ads)."),
    ("Price scale", 15, MONEY,
     "Demand falls exponentially with the price paid: each extra 15 of price cuts it to 37% (1/e)."),
    ("Largest lift from ads", 1.5, PERCENT,
     "With unlimited ads, demand grows by at most this much (150% = 2.5 times)."),
    ("Ad spend for 63% of that lift", 4000, WHOLE,
     "Ads saturate: this monthly spend reaches 63% (1 - 1/e) of the largest lift."),
    ("Largest lift from a discount", 0.3, PERCENT,
     "The extra demand a discount draws, at its best depth."),
    ("Best discount depth", 0.2, PERCENT,
     "The discount that draws the most extra buyers; the lift falls back to zero at twice this depth."),
    ("Cost per unit", 4, MONEY, "What one more unit costs to make and ship."),
    ("Fixed costs per month", 5000, WHOLE, "Rent, salaries, tools: paid every month whatever is sold."),
    ("Cash at launch", 20000, WHOLE, "Money in the bank on day one."),
    ("Share of the remaining demand reached each month", 0.1, PERCENT,
     "Word of mouth: demand starts at zero and each month closes this share of the gap to its full level."),
]

# The monthly model, once demand has reached its full level. Inputs are Inputs!B2:B4,
# assumptions Assumptions!B2:B11 in the order above.
MODEL = [
    ("Effective price", "=Inputs!B2*(1-Inputs!B3)", MONEY,
     "What a buyer pays: the list price minus the launch discount."),
    ("Buyers at this price, before ads and discount", "=Assumptions!B2*EXP(-B2/Assumptions!B3)", WHOLE,
     "The demand curve: the market size times exp(-price / price scale)."),
    ("Lift from ads", "=1+Assumptions!B4*(1-EXP(-Inputs!B4/Assumptions!B5))", "0.000",
     "1 + largest lift x (1 - exp(-ad spend / saturation spend))."),
    ("Lift from the discount",
     "=1+Assumptions!B6*(Inputs!B3/Assumptions!B7)*(2-Inputs!B3/Assumptions!B7)", "0.000",
     "Peaks at the best discount depth; 1 (no lift) at no discount and at twice the best depth."),
    ("Units sold per month", "=B3*B4*B5", WHOLE, "Buyers at this price times both lifts."),
    ("Revenue per month", "=B6*B2", MONEY, None),
    ("Cost of the units sold", "=B6*Assumptions!B8", MONEY, None),
    ("Fixed costs", "=Assumptions!B9", MONEY, None),
    ("Ad spend", "=Inputs!B4", MONEY, None),
    (None, None, None, None),
    ("Monthly profit", "=B7-B8-B9-B10", MONEY,
     "Revenue minus every cost, in a month once demand has reached its full level. "
     "This is the number the pricing recipe maximises."),
    (None, None, None, None),
    ("Cash at month 12", "='Cash flow'!G14", MONEY,
     "The money left after the first year, while demand was still growing (see the Cash flow sheet). "
     "The recipe's guard: it must not go below zero."),
]


def build() -> Workbook:
    wb = Workbook()
    inputs = wb.active
    inputs.title = "Inputs"
    _title(inputs, "Pricing inputs", "overnight may change the yellow cells (B2:B4); everything else is computed.")
    for row, (label, value, fmt, note) in enumerate(INPUTS, start=2):
        _row(inputs, row, label, value, fmt, note, fill=INPUT_FILL)

    assumptions = wb.create_sheet("Assumptions")
    _title(assumptions, "Assumptions", "Facts about the market and the business.")
    for row, (label, value, fmt, note) in enumerate(ASSUMPTIONS, start=2):
        _row(assumptions, row, label, value, fmt, note)

    model = wb.create_sheet("Model")
    _title(model, "Monthly model", "One month once demand has reached its full level.")
    for row, (label, formula, fmt, note) in enumerate(MODEL, start=2):
        if label is None:
            continue
        fill = RESULT_FILL if row in (12, 14) else None
        _row(model, row, label, formula, fmt, note, fill=fill, bold=row in (12, 14))

    flow = wb.create_sheet("Cash flow")
    headers = ["Month", "Share of full demand", "Units", "Revenue", "Costs", "Profit", "Cash"]
    for col, text in enumerate(headers, start=1):
        cell = flow.cell(1, col, text)
        cell.font = BOLD
        cell.border = Border(bottom=THIN)
    flow.cell(2, 1, "Launch")
    flow.cell(2, 7, "=Assumptions!B10").number_format = MONEY
    flow["G2"].comment = Comment("Cash at launch (Assumptions!B10).", AUTHOR)
    for month in range(1, 13):
        r = month + 2
        flow.cell(r, 1, month)
        flow.cell(r, 2, f"=1-(1-Assumptions!$B$11)^A{r}").number_format = PERCENT
        flow.cell(r, 3, f"=Model!$B$6*B{r}").number_format = WHOLE
        flow.cell(r, 4, f"=C{r}*Model!$B$2").number_format = MONEY
        flow.cell(r, 5, f"=C{r}*Assumptions!$B$8+Assumptions!$B$9+Inputs!$B$4").number_format = MONEY
        flow.cell(r, 6, f"=D{r}-E{r}").number_format = MONEY
        flow.cell(r, 7, f"=G{r - 1}+F{r}").number_format = MONEY
    flow["B3"].comment = Comment("Demand grows by word of mouth: 1 - (1 - share)^month of its full level.", AUTHOR)
    flow["E3"].comment = Comment("Units times the cost per unit, plus fixed costs and ads.", AUTHOR)
    flow.cell(15, 1, "First year").font = BOLD
    flow.cell(15, 6, "=SUM(F3:F14)").number_format = MONEY
    flow["F15"].font = BOLD
    flow.column_dimensions["A"].width = 12
    for col in "BCDEFG":
        flow.column_dimensions[col].width = 16
    return wb


def _title(ws, title: str, subtitle: str) -> None:
    ws["A1"] = title
    ws["A1"].font = TITLE
    ws["D1"] = subtitle
    ws["D1"].alignment = Alignment(wrap_text=False)
    ws.column_dimensions["A"].width = 48
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
    out = Path(argv[0]) if argv else Path(__file__).with_name("pricing.xlsx")
    build().save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
