/** The meaningful lines of a keys or users file: blank lines and `#` comments skipped, each with its 1-based number. */
export function credentialLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed !== '' && !trimmed.startsWith('#')) out.push({ line: i + 1, text: trimmed });
  });
  return out;
}
