"""Terraform's numbers: binary floating point with a 512-bit mantissa.

Terraform (through cty) keeps every number as a Go ``big.Float`` of 512 bits of precision,
rounding to nearest-even after parsing and after each operation, and prints numbers with
``Text('f', -1)``: the shortest decimal that reads back as the same 512-bit value. So
``0.1 + 0.2`` is ``0.3`` there (not ``0.30000000000000004`` as in 64-bit floats) and ``1/3``
prints 156 digits.

Here a number is a Python ``int`` when it is whole and a ``Fraction`` otherwise, always
rounded to what a 512-bit ``big.Float`` holds, so arithmetic and printing match Terraform
exactly. Infinity (``1/0`` in Terraform) is refused.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

PRECISION = 512
Number = int | Fraction

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class NumberError(ValueError):
    """A number Terraform would not hold (infinity) or a text that is not a number."""


def is_number(value: object) -> bool:
    return isinstance(value, (int, float, Fraction)) and not isinstance(value, bool)


def rounded(value: Fraction | int) -> Number:
    """The value rounded to a 512-bit mantissa, nearest-even (big.Float's default)."""
    q = Fraction(value)
    if q == 0:
        return 0
    sign = -1 if q < 0 else 1
    q = abs(q)
    exponent = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** exponent > q:
        exponent -= 1
    shift = PRECISION - 1 - exponent  # q * 2**shift lies in [2**511, 2**512)
    scaled = q * Fraction(2) ** shift
    mantissa = round(scaled)  # Fraction.__round__ rounds half to even
    result = Fraction(mantissa) / Fraction(2) ** shift
    return normalise(sign * result)


def normalise(value: Fraction | int) -> Number:
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value.numerator)
    return value


def parse(text: str) -> Number:
    """A decimal literal, as big.ParseFloat(text, 10, 512, ToNearestEven)."""
    cleaned = text.strip()
    if not _DECIMAL.fullmatch(cleaned):
        raise NumberError(f"{text!r} is not a number")
    return rounded(Fraction(cleaned))


def from_python(value: int | float | Fraction) -> Number:
    """A Python number as Terraform would read it: a float through its shortest decimal text."""
    if isinstance(value, bool):
        raise NumberError("a bool is not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NumberError(f"{value} is not a number Terraform can hold")
        return parse(repr(value))
    return rounded(value)


def to_python(value: Number) -> int | float:
    """The nearest Python int or float (for AWS API calls and JSON files)."""
    return value if isinstance(value, int) else float(value)


def add(a: Number, b: Number) -> Number:
    return rounded(Fraction(a) + Fraction(b))


def subtract(a: Number, b: Number) -> Number:
    return rounded(Fraction(a) - Fraction(b))


def multiply(a: Number, b: Number) -> Number:
    return rounded(Fraction(a) * Fraction(b))


def divide(a: Number, b: Number) -> Number:
    if b == 0:
        raise NumberError("division by zero (Terraform gives infinity, which this evaluator refuses)")
    return rounded(Fraction(a) / Fraction(b))


def modulo(a: Number, b: Number) -> Number:
    """Terraform's %: the remainder of a truncated division (it has the sign of a)."""
    if b == 0:
        raise NumberError("modulo by zero (Terraform gives infinity, which this evaluator refuses)")
    qa, qb = Fraction(a), Fraction(b)
    quotient = math.trunc(qa / qb)
    return rounded(qa - quotient * qb)


# -- printing -----------------------------------------------------------------------------


class _Decimal:
    """Exact decimal digits of a non-negative value: 0.<digits> x 10**point (no trailing zeros)."""

    def __init__(self, digits: str, point: int) -> None:
        self.digits = digits
        self.point = point

    @classmethod
    def exact(cls, mantissa: int, exp2: int) -> _Decimal:
        """mantissa * 2**exp2, written out in decimal."""
        if mantissa == 0:
            return cls("", 0)
        if exp2 >= 0:
            text, point = str(mantissa << exp2), None
        else:
            text = str(mantissa * 5 ** (-exp2))
            point = len(text) + exp2
        if point is None:
            point = len(text)
        stripped = text.rstrip("0")
        return cls(stripped, point if stripped else 0)

    def at(self, index: int) -> str:
        return self.digits[index] if 0 <= index < len(self.digits) else "0"

    def round_down(self, n: int) -> None:
        self.digits = self.digits[:n].rstrip("0")
        if not self.digits:
            self.point = 0

    def round_up(self, n: int) -> None:
        digits = list(self.digits[:n])
        i = n - 1
        while i >= 0 and digits[i] == "9":
            i -= 1
        if i < 0:
            self.digits, self.point = "1", self.point + 1
            return
        digits[i] = str(int(digits[i]) + 1)
        self.digits = "".join(digits[: i + 1])

    def round(self, n: int) -> None:
        """Round to n digits, half to even (math/big's decimal.round)."""
        if n < 0 or n >= len(self.digits):
            return
        digit = self.digits[n]
        exact_half = digit == "5" and n + 1 == len(self.digits)
        up = (n > 0 and int(self.digits[n - 1]) % 2 == 1) if exact_half else digit >= "5"
        if up:
            self.round_up(n)
        else:
            self.round_down(n)


def _mantissa(value: Fraction) -> tuple[int, int]:
    """(M, E) with value == M * 2**E and M exactly PRECISION bits long (value > 0)."""
    exponent = value.numerator.bit_length() - value.denominator.bit_length()
    if Fraction(2) ** exponent > value:
        exponent -= 1
    shift = PRECISION - 1 - exponent
    scaled = value * Fraction(2) ** shift
    if scaled.denominator != 1:
        raise NumberError("the number is not rounded to 512 bits")
    return int(scaled), -shift


def _shortest(value: Fraction) -> _Decimal:
    """math/big's roundShortest: the fewest digits that still read back as value."""
    mantissa, exp2 = _mantissa(value)
    digits = _Decimal.exact(mantissa, exp2)
    double, half_exp = 2 * mantissa, exp2 - 1  # lsb is half an ulp
    lower = _Decimal.exact(double - 1, half_exp)
    upper = _Decimal.exact(double + 1, half_exp)
    inclusive = mantissa % 2 == 0
    for i, m in enumerate(digits.digits):
        low, up = lower.at(i), upper.at(i)
        ok_down = low != m or (inclusive and i + 1 == len(lower.digits))
        ok_up = m != up and (inclusive or int(m) + 1 < int(up) or i + 1 < len(upper.digits))
        if ok_down and ok_up:
            digits.round(i + 1)
            break
        if ok_down:
            digits.round_down(i + 1)
            break
        if ok_up:
            digits.round_up(i + 1)
            break
    return digits


def _fixed(d: _Decimal, fraction_digits: int) -> str:
    """math/big's fmtF: integer part, then exactly fraction_digits digits after the point."""
    whole = d.digits[: d.point].ljust(d.point, "0") if d.point > 0 else "0"
    if fraction_digits <= 0:
        return whole
    fraction = "".join(d.at(d.point + i) if d.point + i >= 0 else "0" for i in range(fraction_digits))
    return f"{whole}.{fraction}"


def _exponent(d: _Decimal, fraction_digits: int, letter: str) -> str:
    """math/big's fmtE: d.ddd...e+XX."""
    first = d.digits[0] if d.digits else "0"
    text = first
    if fraction_digits > 0:
        text += "." + "".join(d.at(1 + i) for i in range(fraction_digits))
    exp = d.point - 1 if d.digits else 0
    sign = "-" if exp < 0 else "+"
    return f"{text}{letter}{sign}{abs(exp):02d}"


def to_text(value: Number) -> str:
    """Terraform's text for a number (tostring, templates, jsonencode): Text('f', -1)."""
    if isinstance(value, int):
        return str(value)
    magnitude = _shortest(abs(Fraction(value)))
    text = _fixed(magnitude, max(len(magnitude.digits) - magnitude.point, 0))
    return ("-" if value < 0 else "") + text


def format_verb(value: Number, verb: str, precision: int | None) -> str:
    """format()'s %f, %e and %g (Go's big.Float formatting; default precision 6 for f and e)."""
    q = Fraction(value)
    sign = "-" if q < 0 else ""
    q = abs(q)
    shortest = False
    if q == 0:
        d = _Decimal("", 0)
    else:
        mantissa, exp2 = _mantissa(Fraction(rounded(q)))
        d = _Decimal.exact(mantissa, exp2)
    if verb == "f":
        digits = 6 if precision is None else precision
        d.round(d.point + digits)
        return sign + _fixed(d, digits)
    if verb == "e":
        digits = 6 if precision is None else precision
        d.round(1 + digits)
        return sign + _exponent(d, digits, "e")
    if verb == "g":
        prec = -1 if precision is None else precision
        if prec < 0:
            shortest = True
            if q != 0:
                d = _shortest(q)
            prec = len(d.digits)
        else:
            prec = max(prec, 1)
            d.round(prec)
        eprec = prec
        if eprec > len(d.digits) and len(d.digits) >= d.point:
            eprec = len(d.digits)
        if shortest:
            eprec = 6
        exp = d.point - 1
        if exp < -4 or exp >= eprec:
            prec = min(prec, len(d.digits))
            return sign + _exponent(d, prec - 1, "e")
        if prec > d.point:
            prec = len(d.digits)
        return sign + _fixed(d, max(prec - d.point, 0))
    raise NumberError(f"unsupported number verb %{verb}")
