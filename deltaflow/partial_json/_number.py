"""JSON number tokens: validation of partial tokens, conversion matching jiter, bounded long tokens."""

from __future__ import annotations

import re

__all__ = [
    "COMPACT_ABOVE",
    "MAX_INT_DIGITS",
    "NUM_COMPLETE",
    "NUM_FULL",
    "NUM_PREFIX",
    "NUM_RUN",
    "compact",
    "convert",
    "int_digits_excess",
]

# [0-9] rather than \d: \d also matches non-ASCII digits, which JSON does not allow.
# A complete token directly followed by a character that cannot continue it: the common case, one regex.
NUM_COMPLETE = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?(?=[^0-9eE+\-.])")
# The maximal run of characters that may belong to a number token.
NUM_RUN = re.compile(r"[0-9eE+\-.]*")
_INT_PART = re.compile(r"[0-9]*")
NUM_FULL = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# Every prefix of a valid number; ``match(tok).end()`` is the offset of the first character that
# cannot be part of a number (each branch is greedy, so the match is the longest valid prefix; no
# branch rescans the digits, so a long fraction is read once).
NUM_PREFIX = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.(?:[0-9]+(?:[eE][+-]?[0-9]*)?)?|[eE][+-]?[0-9]*)?)?")

# jiter rejects a number whose integer part has more digits than this ("number out of range"); it is
# also CPython's default int/str conversion bound.
MAX_INT_DIGITS = 4300
# An open token longer than this is compacted (see ``compact``), and again every half of this.
COMPACT_ABOVE = 1024
# A double's exact decimal halfway points need at most 767 significant digits, so digits past the
# 800th only matter as "is anything non-zero after this point".
_SIGNIFICANT = 800
_EXP_DIGITS = 20


def int_digits_excess(tok: str) -> int:
    """Return the offset in ``tok`` of the first integer digit beyond jiter's bound, or -1."""
    if len(tok) <= MAX_INT_DIGITS:
        return -1
    start = 1 if tok[0] == "-" else 0
    end = _INT_PART.match(tok, start).end()  # type: ignore[union-attr]  # '*' always matches
    return start + MAX_INT_DIGITS if end - start > MAX_INT_DIGITS else -1


def convert(tok: str, is_float: bool, bias: int = 0) -> int | float:
    """Convert a complete token; ``bias`` is a decimal exponent taken out by ``compact``.

    Raises:
        ValueError: an integer too long for the interpreter's int/str conversion bound (only when an
            application lowered ``sys.set_int_max_str_digits`` below jiter's bound).
    """
    if not is_float:
        return int(tok)
    if not bias:
        return float(tok)
    cut = max(tok.find("e"), tok.find("E"))
    if cut < 0:
        return float(f"{tok}e{bias}")
    exp = tok[cut + 1 :]
    sign = -1 if exp[0] == "-" else 1
    digits = exp.lstrip("+-").lstrip("0") or "0"
    # Saturate rather than convert thousands of exponent digits: the value is 0 or inf either way.
    magnitude = int(digits) if len(digits) <= _EXP_DIGITS else 10**_EXP_DIGITS
    return float(f"{tok[:cut]}e{sign * magnitude + bias}")


def compact(tok: str, bias: int) -> tuple[str, int]:
    """Shrink a long valid partial token to a bounded one with the same value for every continuation.

    A token still in its integer part comes back unchanged (jiter bounds it to 4300 digits anyway).
    Leading fraction zeros after ``0.`` move into ``bias``; fraction digits past the
    significant ones collapse to one sticky ``1`` (or vanish when all zero: later digits land past the
    significant ones either way); exponent leading zeros go and huge exponents saturate. Digits that
    arrive later keep the same meaning, so the token keeps growing from the compacted form.

    Args:
        tok: a valid prefix of a number.
        bias: the decimal exponent already taken out of ``tok``.

    Returns:
        The compacted token and its new bias.
    """
    cut = max(tok.find("e"), tok.find("E"))
    mant, exp = (tok, "") if cut < 0 else (tok[:cut], tok[cut:])
    dot = mant.find(".")
    if dot >= 0 and dot + 1 < len(mant):
        head, frac = mant[:dot], mant[dot + 1 :]
        int_digits = head.lstrip("-")
        if int_digits == "0":
            stripped = frac.lstrip("0") or "0"
            bias -= len(frac) - len(stripped)
            frac = stripped
            keep = _SIGNIFICANT
        else:
            keep = max(_SIGNIFICANT - len(int_digits), 1)
        if len(frac) > keep:
            frac = frac[:keep] + ("1" if frac[keep:].strip("0") else "")
        mant = f"{head}.{frac}"
    if exp:
        sign_end = 2 if len(exp) > 1 and exp[1] in "+-" else 1
        digits = exp[sign_end:]
        if digits:
            digits = digits.lstrip("0") or "0"
            if len(digits) > _EXP_DIGITS:
                digits = "9" * _EXP_DIGITS
        exp = exp[:sign_end] + digits
    return mant + exp, bias
