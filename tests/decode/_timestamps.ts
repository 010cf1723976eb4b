/** Generated timestamp texts for the differential tests of decode. */
import fc from "fast-check";

/** Timestamps near the contract's form: valid ones and ones a digit or a separator away. */
export const timestampText = fc.oneof(
  fc.tuple(
    fc.integer({ min: 0, max: 9999 }),
    fc.integer({ min: 0, max: 13 }),
    fc.integer({ min: 0, max: 32 }),
    fc.integer({ min: 0, max: 24 }),
    fc.integer({ min: 0, max: 60 }),
    fc.option(fc.integer({ min: 0, max: 60 })),
    fc.option(fc.stringMatching(/^[0-9]{1,10}$/)),
    fc.constantFrom("", "Z", "z", "+00:00", "-05:30", "+23:59", "+24:00", "-00:60", "+0300", "UTC"),
  ).map(([y, mo, d, h, mi, s, frac, suffix]) => {
    const p = (n: number, w = 2) => String(n).padStart(w, "0");
    const seconds = s === null ? "" : `:${p(s)}${frac === null ? "" : `.${frac}`}`;
    return `${p(y, 4)}-${p(mo)}-${p(d)}T${p(h)}:${p(mi)}${seconds}${suffix}`;
  }),
  fc.tuple(
    fc.date({
      min: new Date("0000-01-01T00:00:00Z"),
      max: new Date("9999-12-31T23:59:59Z"),
      noInvalidDate: true,
    }),
    fc.integer({ min: 10, max: 26 }),
    fc.constantFrom("", "Z", "+01:00"),
  ).map(([d, cut, suffix]) => `${d.toISOString().slice(0, cut)}${suffix}`),
  fc.tuple(
    fc.constantFrom("2024-02-29T12:30:00.5Z", "2026-11-25T21:00:00.123456"),
    fc.nat(30),
    fc.constantFrom(..."0123456789-:T.Z+ zt"),
  )
    .map(([t, i, c]) => `${t.slice(0, i)}${c}${t.slice(i + 1)}`),
  fc.string({ maxLength: 30 }),
);
