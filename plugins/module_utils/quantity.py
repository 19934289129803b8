# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes resource quantities in their canonical string form.

The API server and the controllers' webhooks (Kueue's defaulting webhook, for one) hand quantities
back in the form ``resource.Quantity.String()`` prints: ``1000`` becomes ``"1k"``, ``1024Gi``
becomes ``"1Ti"``, an integer becomes a string. An object applied with another spelling differs from
what is stored and is reported changed on every run, so the collection renders quantities the way
they come back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from fractions import Fraction

_BINARY = [("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)]
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = dict((v, k) for k, v in _DECIMAL.items())
_RX = re.compile(r"^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")


class QuantityError(ValueError):
    pass


def parse(value):
    """(Fraction value, format) of a quantity; format is 'binary' or 'decimal'."""
    if isinstance(value, bool):
        raise QuantityError("%r is not a quantity" % (value,))
    if isinstance(value, int):
        return Fraction(value), "decimal"
    if isinstance(value, float):
        return Fraction(str(value)), "decimal"
    m = _RX.match(str(value).strip())
    if not m:
        raise QuantityError("%r is not a Kubernetes quantity" % (value,))
    sign, number, suffix = m.group(1), m.group(2), m.group(3) or ""
    num = Fraction(number)
    if sign == "-":
        num = -num
    for name, power in _BINARY:
        if suffix == name:
            return num * (2 ** power), "binary"
    if suffix[:1] in ("e", "E"):
        return num * Fraction(10) ** int(suffix[1:]), "decimal"
    exp = _DECIMAL[suffix]
    return num * Fraction(10) ** exp, "decimal"


def canonical(value):
    """The string resource.Quantity.String() gives for value (int, float or quantity string)."""
    amount, fmt = parse(value)
    if fmt == "binary" and (amount.denominator != 1 or -1024 < amount < 1024):
        fmt = "decimal"
    if fmt == "binary":
        n = amount.numerator
        for name, power in _BINARY:
            if n % (2 ** power) == 0:
                return "%d%s" % (n // (2 ** power), name)
        return "%d" % n
    # Decimal SI: the largest exponent (a multiple of 3, from nano up) that leaves an integer mantissa.
    # Precision below nano rounds up, as the apiserver does.
    exp = -9
    mantissa = amount * Fraction(10) ** 9
    if mantissa.denominator != 1:
        mantissa = Fraction(-((-mantissa.numerator) // mantissa.denominator))
    mantissa = int(mantissa)
    if mantissa == 0:
        return "0"
    while exp < 18 and mantissa % 1000 == 0:
        mantissa //= 1000
        exp += 3
    return "%d%s" % (mantissa, _DECIMAL_SUFFIX[exp])
