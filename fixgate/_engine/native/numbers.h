// Numbers once: wire text to whole lots and ticks at the edge, and back to text from the integers.
//
// A quantity or a price on the wire is a decimal string; inside the engine it is an int64 count of
// the instrument's lot or tick, parsed exactly (no binary floating point), and everything outgoing
// is formatted from those integers: never an exponent, never a float repr, never more decimals than
// the step. The conventions match fixgate._fast.instruments.units_of: -1 for a value that is not a
// positive number in range, 0 for a value off the grid, else the number of units.
#ifndef FIXGATE_ENGINE_NUMBERS_H
#define FIXGATE_ENGINE_NUMBERS_H

#include <stdint.h>
#include <time.h>

#include <string>

namespace fixgate {

typedef __int128 wide;

// The largest count of lots or ticks (as fixgate._fast: lots x ticks must fit an int64).
const int64_t MAX_UNITS = 1000000000LL;

// A decimal value mantissa x 10^-scale (a lot size or a tick size: mantissa > 0).
struct Step {
    int64_t mantissa = 1;
    int scale = 0;
};

inline wide power_of_ten(int exponent) {
    wide value = 1;
    for (int i = 0; i < exponent; ++i) value *= 10;
    return value;
}

// Parse plain decimal text ("12", "0.50", ".5"): digits with at most one point, no sign, no exponent,
// at most 18 significant digits. Returns false for anything else.
inline bool parse_decimal(const char* text, size_t length, int64_t& mantissa, int& scale) {
    int64_t value = 0;
    int digits = 0;
    int decimals = 0;
    bool point = false;
    bool any = false;
    for (size_t i = 0; i < length; ++i) {
        char c = text[i];
        if (c >= '0' && c <= '9') {
            any = true;
            if (value == 0 && c == '0') {
                if (point) ++decimals;
                continue;
            }
            if (++digits > 18) return false;
            value = value * 10 + (c - '0');
            if (point) ++decimals;
        } else if (c == '.' && !point) {
            point = true;
        } else {
            return false;
        }
    }
    if (!any) return false;
    // Drop trailing zeros of the fraction so that the scale is the smallest exact one.
    while (decimals > 0 && value != 0 && value % 10 == 0) {
        value /= 10;
        --decimals;
    }
    if (value == 0) decimals = 0;
    mantissa = value;
    scale = decimals;
    return true;
}

inline bool parse_decimal(const std::string& text, int64_t& mantissa, int& scale) {
    return parse_decimal(text.data(), text.size(), mantissa, scale);
}

// Return text / step in whole units: -1 when not a positive number below MAX_UNITS steps, 0 when off
// the grid, else the count.
inline int64_t units_of(const char* text, size_t length, const Step& step) {
    int64_t mantissa;
    int scale;
    if (!parse_decimal(text, length, mantissa, scale) || mantissa <= 0) return -1;
    wide numerator = mantissa;       // value = numerator x 10^-scale
    if (scale > step.scale) {
        wide divisor = power_of_ten(scale - step.scale);
        if (numerator % divisor != 0) return 0;
        numerator /= divisor;
    } else if (scale < step.scale) {
        numerator *= power_of_ten(step.scale - scale);
    }
    // numerator is now the value in units of 10^-step.scale
    if (numerator % step.mantissa != 0) {
        // Off the grid, unless it is also out of range.
        if (numerator / step.mantissa >= MAX_UNITS) return -1;
        return 0;
    }
    wide units = numerator / step.mantissa;
    if (units >= MAX_UNITS) return -1;
    return (int64_t)units;
}

inline int64_t units_of(const std::string& text, const Step& step) {
    return units_of(text.data(), text.size(), step);
}

// Append the decimal text of value x 10^-scale (value may be negative), trailing zeros trimmed.
inline void append_scaled(std::string& out, wide value, int scale) {
    char digits[64];
    int count = 0;
    bool negative = value < 0;
    if (negative) value = -value;
    do {
        digits[count++] = (char)('0' + (int)(value % 10));
        value /= 10;
    } while (value != 0 || count <= scale);
    // digits holds the number least significant first, at least scale + 1 digits
    int first = 0;
    while (first < scale && digits[first] == '0') ++first;     // trailing zeros of the fraction
    if (negative) out.push_back('-');
    for (int i = count - 1; i >= scale; --i) out.push_back(digits[i]);
    if (first < scale) {
        out.push_back('.');
        for (int i = scale - 1; i >= first; --i) out.push_back(digits[i]);
    }
}

// The text of `units` steps: 150 lots of 0.01 -> "1.5"; 100 lots of 1 -> "100".
inline std::string format_units(int64_t units, const Step& step) {
    std::string out;
    append_scaled(out, (wide)units * step.mantissa, step.scale);
    return out;
}

// The text of numerator / denominator steps, rounded half to even at `extra` decimals beyond the
// step's own (an average price: the cost of the fills in tick-lots over the lots filled).
inline std::string format_ratio(wide numerator, wide denominator, const Step& step, int extra) {
    std::string out;
    if (denominator == 0) {
        out = "0";
        return out;
    }
    wide scaled = numerator * step.mantissa * power_of_ten(extra);
    bool negative = (scaled < 0) != (denominator < 0);
    if (scaled < 0) scaled = -scaled;
    if (denominator < 0) denominator = -denominator;
    wide quotient = scaled / denominator;
    wide remainder = scaled % denominator;
    if (remainder * 2 > denominator || (remainder * 2 == denominator && (quotient & 1))) ++quotient;
    append_scaled(out, negative ? -quotient : quotient, step.scale + extra);
    return out;
}

// The nearest whole count of steps to numerator / denominator steps (half to even), for prices.
inline int64_t round_ratio(wide numerator, wide denominator) {
    if (denominator == 0) return 0;
    bool negative = (numerator < 0) != (denominator < 0);
    if (numerator < 0) numerator = -numerator;
    if (denominator < 0) denominator = -denominator;
    wide quotient = numerator / denominator;
    wide remainder = numerator % denominator;
    if (remainder * 2 > denominator || (remainder * 2 == denominator && (quotient & 1))) ++quotient;
    return (int64_t)(negative ? -quotient : quotient);
}

// A decimal text as a double (market data only, never order state): NaN when not a plain decimal.
inline double decimal_to_double(const char* text, size_t length) {
    int64_t mantissa;
    int scale;
    if (!parse_decimal(text, length, mantissa, scale)) return __builtin_nan("");
    double value = (double)mantissa;
    double divisor = 1.0;
    for (int i = 0; i < scale; ++i) divisor *= 10.0;
    return value / divisor;
}

// -- TIME -------------------------------------------------------------------------------------------

inline int64_t realtime_ns() {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

inline int64_t monotonic_ns() {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

// A FIX UTCTimestamp with microseconds: YYYYMMDD-HH:MM:SS.ffffff. The text up to the second is
// formatted once per second per thread.
inline std::string utc_timestamp(int64_t now_ns) {
    thread_local int64_t cached_second = -1;
    thread_local char prefix[24];
    int64_t second = now_ns / 1000000000LL;
    if (second != cached_second) {
        time_t seconds = (time_t)second;
        struct tm parts;
        gmtime_r(&seconds, &parts);
        strftime(prefix, sizeof(prefix), "%Y%m%d-%H:%M:%S", &parts);
        cached_second = second;
    }
    char text[40];
    int micros = (int)((now_ns % 1000000000LL) / 1000);
    int length = 0;
    for (; prefix[length]; ++length) text[length] = prefix[length];
    text[length++] = '.';
    for (int divisor = 100000; divisor >= 1; divisor /= 10) text[length++] = (char)('0' + (micros / divisor) % 10);
    return std::string(text, length);
}

// Nanoseconds since the epoch of a FIX UTCTimestamp (YYYYMMDD-HH:MM:SS[.fraction]); 0 when unreadable.
inline int64_t parse_utc_timestamp(const std::string& text) {
    if (text.size() < 17 || text[8] != '-' || text[11] != ':' || text[14] != ':') return 0;
    auto number = [&](size_t at, size_t count) {
        int value = 0;
        for (size_t i = at; i < at + count; ++i) {
            if (text[i] < '0' || text[i] > '9') return -1;
            value = value * 10 + (text[i] - '0');
        }
        return value;
    };
    int year = number(0, 4), month = number(4, 2), day = number(6, 2);
    int hour = number(9, 2), minute = number(12, 2), second = number(15, 2);
    if (year < 0 || month < 1 || day < 1 || hour < 0 || minute < 0 || second < 0) return 0;
    // days from civil (Howard Hinnant's algorithm)
    int y = year - (month <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + doe - 719468;
    int64_t ns = ((days * 24 + hour) * 60 + minute) * 60 + second;
    ns *= 1000000000LL;
    if (text.size() > 18 && text[17] == '.') {
        int64_t fraction = 0;
        int digits = 0;
        for (size_t i = 18; i < text.size() && digits < 9; ++i, ++digits) {
            if (text[i] < '0' || text[i] > '9') return 0;
            fraction = fraction * 10 + (text[i] - '0');
        }
        for (; digits < 9; ++digits) fraction *= 10;
        ns += fraction;
    }
    return ns;
}

}  // namespace fixgate

#endif
