# Calendar arithmetic for UTC (y, m, d, hh, mm, ss) tuples, on any port's epoch: days from civil dates
# and back (H. Hinnant's algorithms), so no port's time.mktime/gmtime epoch (1970 or 2000) leaks in.


def epoch_seconds(t):
    """Seconds since 1970-01-01 UTC of a (y, m, d, hh, mm, ss) tuple."""
    y, m, d = t[0], t[1], t[2]
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + t[3] * 3600 + t[4] * 60 + t[5]


def utc_tuple(seconds):
    """The (y, m, d, hh, mm, ss) tuple of seconds since 1970-01-01 UTC."""
    days, rem = divmod(seconds, 86400)
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    y = yoe + era * 400 + (m <= 2)
    return (y, m, d, rem // 3600, rem // 60 % 60, rem % 60)
