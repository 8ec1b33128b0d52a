/**
 * Text as an SQL literal, for statements that must carry no parameters: an `E'…'` string, so a
 * backslash means the same whatever `standard_conforming_strings` says. Text with a NUL cannot
 * be stored by Postgres at all, and would cut the statement short: it is refused.
 */
export const textLiteral = (value: string): string => {
  if (value.includes("\u0000")) throw new TypeError("text with a NUL character cannot be sent to Postgres")
  return `E'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`
}
