"""Argument checks, in one style: a ``TypeError`` for a value of the wrong type, a ``ValueError`` for a wrong value.

Every message names the argument, says what it must be, shows what it got, and (where one helps) gives an example
of a good value. Each check returns the value in the form the caller should use (a Python ``int`` for any integer
type, a ``float`` for any real number), so a numpy or torch scalar passes wherever a Python number does. ``bool`` is
never taken for a number: ``True`` as a count or a fraction is a mistake, not 1.

This module is the package's bottom floor: it imports nothing from :mod:`spline_utils`.
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence

import numpy as np
import torch


def _got(value) -> str:
    """How a message shows the value it refuses: its repr (shortened) and its type."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({type(value).__name__})"


def _as_number(value):
    """A numpy scalar, 0-d numpy array or 0-d torch tensor as its Python scalar; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dim() == 0:
        return value.item()
    if type(value).__module__ == "numpy" and getattr(value, "shape", None) == () and hasattr(value, "item"):
        return value.item()
    return value


def _bounds_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_integer(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python ``int``: any integer type (Python, numpy, a 0-d torch tensor), not a bool or a float.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value
        The value to check.
    minimum, maximum : int, optional
        Inclusive bounds.

    Raises
    ------
    TypeError
        ``value`` is not an integer (a float, even 3.0, a string, a bool, None ...).
    ValueError
        ``value`` lies outside ``[minimum, maximum]``.
    """
    number = _as_number(value)
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        raise TypeError(f"{name} must be a whole number{_bounds_text(minimum, maximum)} (an int), got {_got(value)}")
    number = int(number)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be a whole number{_bounds_text(minimum, maximum)}, got {number}")
    return number


def check_finite_number(name: str, value, minimum: float | None = None, maximum: float | None = None,
                        strict_minimum: bool = False) -> float:
    """``value`` as a finite Python ``float``: any real number type, not a bool, a string, NaN or an infinity.

    Parameters
    ----------
    name : str
    value
    minimum, maximum : float, optional
        Inclusive bounds (``minimum`` exclusive with ``strict_minimum``).
    strict_minimum : bool
        Require ``value > minimum`` (e.g. a positive threshold).

    Raises
    ------
    TypeError
        ``value`` is not a real number.
    ValueError
        ``value`` is NaN or infinite, or outside the bounds.
    """
    number = _as_number(value)
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_got(value)}")
    number = float(number)
    low = "" if minimum is None else (f" > {minimum}" if strict_minimum else f" >= {minimum}")
    high = "" if maximum is None else f" <= {maximum}"
    wanted = f"a finite number{low}{' and' if low and high else ''}{high}"
    if not math.isfinite(number):
        raise ValueError(f"{name} must be {wanted}, got {number}")
    if minimum is not None and (number <= minimum if strict_minimum else number < minimum):
        raise ValueError(f"{name} must be {wanted}, got {number}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be {wanted}, got {number}")
    return number


def check_fraction(name: str, value, what: str) -> float:
    """``value`` as a float in [0, 1): the fraction of ``what`` (e.g. ``"nodes to remove"``).

    Raises
    ------
    TypeError
        ``value`` is not a real number (a string such as ``"0.5"``, a bool, None ...).
    ValueError
        ``value`` is NaN or lies outside [0, 1).
    """
    number = _as_number(value)
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1) (the fraction of {what}), got {_got(value)}")
    number = float(number)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1) (the fraction of {what}), got {number}")
    return number


def check_string_choice(name: str, value, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``.

    Raises
    ------
    TypeError
        ``value`` is not a string.
    ValueError
        ``value`` is a string but not one of ``choices``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of the strings {tuple(choices)}, got {_got(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """``value`` if it is a ``bool`` (or a numpy bool); a ``TypeError`` otherwise (1, "yes", None are not flags)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_got(value)}")
    return bool(value)


def check_string(name: str, value, example: str | None = None) -> str:
    """``value`` if it is a ``str`` (a label, a name); a ``TypeError`` otherwise."""
    if not isinstance(value, str):
        hint = f", e.g. {example!r}" if example else ""
        raise TypeError(f"{name} must be a string{hint}, got {_got(value)}")
    return value


def check_callable(name: str, value, signature: str | None = None) -> Callable:
    """``value`` if it can be called; a ``TypeError`` saying how it will be called otherwise."""
    if not callable(value):
        how = f" ({signature})" if signature else ""
        raise TypeError(f"{name} must be a function{how}, got {_got(value)}")
    return value


def check_index(name: str, value, length: int, what: str) -> int:
    """``value`` as an ``int`` in ``[0, length)``: a position among ``length`` ``what``.

    Raises
    ------
    TypeError
        ``value`` is not an integer (``1.5``, ``"2"``, a bool).
    ValueError
        ``value`` does not index one of the ``length`` ``what``.
    """
    number = _as_number(value)
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        raise TypeError(f"{name} must be a whole number indexing {what}, 0 <= {name} < {length}; got {_got(value)}")
    if not 0 <= int(number) < length:
        raise ValueError(f"{name} must index {what}, 0 <= {name} < {length}; got {int(number)}")
    return int(number)


def check_samples(name: str, value) -> torch.Tensor:
    """``value`` as a tensor of shape ``(n_samples, *input_shape)`` with ``n_samples >= 1``.

    Raises
    ------
    TypeError
        ``value`` cannot be read as a numeric tensor (a string, a list of mixed objects ...).
    ValueError
        ``value`` has fewer than two dimensions or no samples.
    """
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} must be a tensor or array of shape (n_samples, *input_shape), got "
                        f"{_got(value)}: {error}") from error
    if tensor.dim() < 2 or len(tensor) == 0:
        raise ValueError(f"{name} must have shape (n_samples, *input_shape) with n_samples >= 1; got "
                         f"{tuple(tensor.shape)}")
    return tensor
