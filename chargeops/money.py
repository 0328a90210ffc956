"""Money in minor units: how many decimals a currency has, and amounts rounded to them once.

Stripe's zero-decimal and three-decimal currencies (stripe.com/docs/currencies); every other
currency has 2. In the core because the importers (fees in exports) and the pipelines (tariffs,
reconciliation) must round the same way."""

from __future__ import annotations

import polars as pl

ZERO_DECIMAL = {
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
}  # fmt: skip
THREE_DECIMAL = {"BHD", "JOD", "KWD", "OMR", "TND"}


def exponent_of(currency: str) -> int:
    """Minor-unit exponent of one currency code (as `minor_unit_exponent`, for scalars)."""
    upper = currency.upper()
    return 0 if upper in ZERO_DECIMAL else 3 if upper in THREE_DECIMAL else 2


def minor_unit_exponent(currency: pl.Expr) -> pl.Expr:
    upper = currency.str.to_uppercase()
    return (
        pl.when(upper.is_in(sorted(ZERO_DECIMAL)))
        .then(0)
        .when(upper.is_in(sorted(THREE_DECIMAL)))
        .then(3)
        .otherwise(2)
        .cast(pl.Int8)
    )


def to_minor(amount: pl.Expr, exponent: pl.Expr) -> pl.Expr:
    """Round half away from zero to minor units (Int64)."""
    scaled = amount * pl.lit(10.0).pow(exponent.cast(pl.Float64))
    return (scaled.abs() + 0.5 + 1e-9).floor().mul(scaled.sign()).cast(pl.Int64)


def money_text(amount: int, exponent: int, currency: str) -> str:
    """An amount in minor units as people read it: `12.34 USD`, `500 JPY`."""
    if exponent == 0:
        return f"{amount} {currency}"
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10**exponent)
    return f"{sign}{major}.{minor:0{exponent}d} {currency}"
