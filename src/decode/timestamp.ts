/**
 * Epoch milliseconds of a timestamp in the contract's form, read by hand: `Date.parse` and the zod
 * pattern together cost more per event than the rest of validation.
 *
 * The form is exactly what the `Timestamp` schema accepts: `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS[.f+]`
 * (UTC), or `YYYY-MM-DDTHH:MM:SS[.f+]` followed by `Z` or `±HH:MM`, with real calendar dates. Fractions
 * past milliseconds are cut, as `Date.parse` does (more than nine digits: `Date.parse` itself reads them, so the verdict stays zod's; decode's bounds then
 * refuse an event's timestamp of more than nine). Anything else gives NaN (see the differential test).
 */
export function parseIsoTimestamp(ts: string): number {
  // Validation reads an event's timestamp, then decode reads it again for the event time: the second
  // read of the same string is a comparison.
  if (ts === _lastText) return _lastTime;
  const t = _parseIsoTimestamp(ts);
  _lastText = ts;
  _lastTime = t;
  return t;
}

let _lastText = "";
let _lastTime = NaN;

function _parseIsoTimestamp(ts: string): number {
  const n = ts.length;
  if (n < 16 || ts.charCodeAt(4) !== 45 || ts.charCodeAt(7) !== 45 || ts.charCodeAt(10) !== 84) return NaN;
  if (ts.charCodeAt(13) !== 58) return NaN;
  const year = _digits(ts, 0, 4);
  const month = _digits(ts, 5, 2);
  const day = _digits(ts, 8, 2);
  const hour = _digits(ts, 11, 2);
  const minute = _digits(ts, 14, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > _daysInMonth(year, month)) return NaN;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59) return NaN;
  let ms = 0;
  let offset = 0;
  let longFraction = false;
  let suffixed = false;
  let i = 16;
  if (i < n) {
    if (ts.charCodeAt(i) !== 58) return NaN;
    const second = _digits(ts, i + 1, 2);
    if (second < 0 || second > 59) return NaN;
    ms = second * 1000;
    i += 3;
    if (i < n && ts.charCodeAt(i) === 46) {
      i++;
      const start = i;
      let frac = 0;
      let scale = 100;
      for (; i < n; i++) {
        const d = ts.charCodeAt(i) - 48;
        if (d < 0 || d > 9) break;
        if (scale >= 1) {
          frac += d * scale;
          scale /= 10;
        }
      }
      if (i === start) return NaN;
      // V8 reads only nine significant digits of a longer fraction, which is not plain truncation.
      longFraction = i - start > 9;
      ms += frac;
    }
    if (i < n) {
      suffixed = true;
      const c = ts.charCodeAt(i);
      if (c === 90) {
        if (i + 1 !== n) return NaN;
      } else if (c === 43 || c === 45) {
        if (i + 6 !== n || ts.charCodeAt(i + 3) !== 58) return NaN;
        const oh = _digits(ts, i + 1, 2);
        const om = _digits(ts, i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59) return NaN;
        offset = (c === 43 ? 1 : -1) * (oh * 60 + om) * 60_000;
      } else {
        return NaN;
      }
    }
  }
  if (longFraction) return Date.parse(suffixed ? ts : `${ts}Z`);
  return _daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 + ms - offset;
}

/** The decimal value of `count` ASCII digits at `at`, or -1. */
function _digits(s: string, at: number, count: number): number {
  let v = 0;
  for (let i = at; i < at + count; i++) {
    const d = s.charCodeAt(i) - 48;
    if (!(d >= 0 && d <= 9)) return -1;
    v = v * 10 + d;
  }
  return v;
}

function _daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function _daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
