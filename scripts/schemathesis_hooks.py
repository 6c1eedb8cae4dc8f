"""Hooks of scripts/schemathesis (SCHEMATHESIS_HOOKS): the values drawn for `format: date-time`.

The API takes date-times only as business times (`occurred_at` of `POST /evidence` and of each
item of `POST /evidence/batch`: when the fact happened), which the server refuses (422) before
1970 or later than the time of recording plus 5 minutes of clock skew, rules that JSON Schema
cannot state; the OpenAPI document states them in the description. Valid data is therefore
drawn from what the server takes: RFC 3339 date-times from 1970 to yesterday, in any offset
(`Z` or +-hh:mm, up to 23:59), with 0 to 6 fractional digits. Invalid data (not a date-time at
all) is schemathesis's own.
"""

import datetime as dt

import schemathesis
from hypothesis import strategies as st

_EPOCH = dt.datetime(1970, 1, 1)
_YESTERDAY = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=1)


def _render(instant: dt.datetime, offset_minutes: int, digits: int, use_z: bool) -> str:
    local = instant + dt.timedelta(minutes=offset_minutes)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    if use_z and offset_minutes == 0:
        return text + "Z"
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


schemathesis.openapi.format(
    "date-time",
    st.builds(
        _render,
        st.datetimes(min_value=_EPOCH, max_value=_YESTERDAY),
        st.integers(-(23 * 60 + 59), 23 * 60 + 59),
        st.integers(0, 6),
        st.booleans(),
    ),
)
