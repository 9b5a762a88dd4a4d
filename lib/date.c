/* lib/date.c: HTTP dates (gchttp/date.h, RFC 9110 §5.6.7). Written by hand rather than
 * with strftime/strptime, whose day and month names follow the program's locale. */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "internal.h"

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const long_days[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int gh_date_format(int64_t t, char out[GH_DATE_LEN])
{
    int64_t day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sec = t - day * 86400;
    int64_t y;
    int m, d;
    civil_from_days(day, &y, &m, &d);
    if (y < 0 || y > 9999) {
        out[0] = 0;
        return GH_EINVAL;
    }
    int wd = (int)((day % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    char *p = out;
    memcpy(p, days[wd], 3);
    p[3] = ',';
    p[4] = ' ';
    p[5] = (char)('0' + d / 10);
    p[6] = (char)('0' + d % 10);
    p[7] = ' ';
    memcpy(p + 8, months[m - 1], 3);
    p[11] = ' ';
    p[12] = (char)('0' + y / 1000);
    p[13] = (char)('0' + y / 100 % 10);
    p[14] = (char)('0' + y / 10 % 10);
    p[15] = (char)('0' + y % 10);
    p[16] = ' ';
    int hh = (int)(sec / 3600), mm = (int)(sec / 60 % 60), ss = (int)(sec % 60);
    p[17] = (char)('0' + hh / 10);
    p[18] = (char)('0' + hh % 10);
    p[19] = ':';
    p[20] = (char)('0' + mm / 10);
    p[21] = (char)('0' + mm % 10);
    p[22] = ':';
    p[23] = (char)('0' + ss / 10);
    p[24] = (char)('0' + ss % 10);
    memcpy(p + 25, " GMT", 5);
    return 0;
}

/* Exactly n digits at *p. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int lit(const char **p, const char *s)
{
    size_t n = strlen(s);
    if (strncmp(*p, s, n) != 0)
        return -1;
    *p += n;
    return 0;
}

static int month(const char **p, int *m)
{
    for (int i = 0; i < 12; i++)
        if (strncmp(*p, months[i], 3) == 0) {
            *m = i + 1;
            *p += 3;
            return 0;
        }
    return -1;
}

static int hms(const char **p, int *h, int *mi, int *s)
{
    if (digits(p, 2, h) || lit(p, ":") || digits(p, 2, mi) || lit(p, ":") || digits(p, 2, s))
        return -1;
    return *h > 23 || *mi > 59 || *s > 60 ? -1 : 0; /* 60: a leap second */
}

static int days_in(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dm[m - 1];
}

int gh_date_parse(const char *s, int64_t *t)
{
    while (*s == ' ' || *s == '\t')
        s++;
    const char *p = s;
    int y = 0, m = 0, d = 0, h = 0, mi = 0, sec = 0, wd = -1;
    for (int i = 0; i < 7; i++)
        if (strncmp(p, days[i], 3) == 0)
            wd = i;
    if (wd < 0)
        return GH_EINVAL;
    if (p[3] == ',') {
        /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        p += 4;
        if (lit(&p, " ") || digits(&p, 2, &d) || lit(&p, " ") || month(&p, &m) ||
            lit(&p, " ") || digits(&p, 4, &y) || lit(&p, " ") || hms(&p, &h, &mi, &sec) ||
            lit(&p, " GMT"))
            return GH_EINVAL;
    } else if (p[3] == ' ') {
        /* asctime: "Sun Nov  6 08:49:37 1994" (day padded with a space) */
        p += 4;
        if (month(&p, &m) || lit(&p, " "))
            return GH_EINVAL;
        if (*p == ' ') {
            p++;
            if (digits(&p, 1, &d))
                return GH_EINVAL;
        } else if (digits(&p, 2, &d)) {
            return GH_EINVAL;
        }
        if (lit(&p, " ") || hms(&p, &h, &mi, &sec) || lit(&p, " ") || digits(&p, 4, &y))
            return GH_EINVAL;
    } else {
        /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
        if (lit(&p, long_days[wd]) || lit(&p, ", ") || digits(&p, 2, &d) || lit(&p, "-") ||
            month(&p, &m) || lit(&p, "-") || digits(&p, 2, &y) || lit(&p, " ") ||
            hms(&p, &h, &mi, &sec) || lit(&p, " GMT"))
            return GH_EINVAL;
        y += y < 70 ? 2000 : 1900;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p || d < 1 || d > days_in(y, m))
        return GH_EINVAL;
    *t = days_from_civil(y, m, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec;
    return 0;
}
