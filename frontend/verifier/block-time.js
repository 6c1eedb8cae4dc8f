// Block time, docs/receipts.md §9.5: exactly YYYY-MM-DDTHH:MM:SS.sssZ, a real Gregorian date
// (years 0000–9999), hours 00–23, minutes and seconds 00–59 (no leap second).

const SEPARATORS = { 4: '-', 7: '-', 10: 'T', 13: ':', 16: ':', 19: '.', 23: 'Z' };

/** Returns null when `time` is a valid block time, else the reason it is not. */
export function blockTimeProblem(time) {
  if (typeof time !== 'string' || time.length !== 24) return 'it is not 24 characters long';
  for (let i = 0; i < 24; i++) {
    const expected = SEPARATORS[i];
    const c = time[i];
    if (expected !== undefined ? c !== expected : !(c >= '0' && c <= '9')) {
      return `character ${i} should be ${expected !== undefined ? `"${expected}"` : 'a digit 0–9'}`;
    }
  }
  const year = Number(time.slice(0, 4));
  const month = Number(time.slice(5, 7));
  const day = Number(time.slice(8, 10));
  if (month < 1 || month > 12) return `month ${time.slice(5, 7)} does not exist`;
  if (day < 1 || day > daysInMonth(year, month)) return `day ${time.slice(8, 10)} does not exist in that month`;
  if (Number(time.slice(11, 13)) > 23) return 'the hour is more than 23';
  if (Number(time.slice(14, 16)) > 59) return 'the minute is more than 59';
  if (Number(time.slice(17, 19)) > 59) return 'the second is more than 59 (leap seconds are not accepted)';
  return null;
}

export function isBlockTime(time) {
  return blockTimeProblem(time) === null;
}

// Proleptic Gregorian calendar: leap years are divisible by 4, except centuries not divisible by
// 400 (so 0000 and 2000 are leap years, 1900 is not).
function daysInMonth(year, month) {
  if (month === 2) return (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
