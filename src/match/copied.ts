/**
 * copied: a string of its own. V8 keeps a slice as a view of the string it was cut from, so a kept 4 KiB cut of
 * a 1 MiB message would hold the whole message for as long as a digest group or a region keeps it.
 */
export function copied(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}
