import type { PolicyExchange } from './policy.js';

/** Runs the exchange's answer edits (PolicyExchange.answerEdits) on an answer's flat header list, in their order. */
export function applyAnswerEdits(ex: PolicyExchange, headers: string[]): void {
  const edits = ex.answerEdits;
  if (edits === null) return;
  for (let i = 0; i < edits.length; i++) (edits[i] as NonNullable<typeof edits[number]>).edit(headers, ex);
}

/** Removes from a flat [name, value, ...] list every field whose lower-case name `drop` says to. */
export function removeFields(list: string[], drop: (lowerName: string) => boolean): void {
  let kept = 0;
  for (let i = 0; i < list.length; i += 2) {
    if (drop((list[i] as string).toLowerCase())) continue;
    list[kept++] = list[i] as string;
    list[kept++] = list[i + 1] as string;
  }
  list.length = kept;
}

/** A token of RFC 9110 §5.6.2: what a field name or a method may be. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A field value Node writes: no control character but tab. */
export const FIELD_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;
