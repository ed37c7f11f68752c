/**
 * Standard emoji by Mattermost name. Mattermost's built-in emoji names are those of the
 * emoji-datasource set (iamcal), which emojibase publishes as a compact shortcode table.
 */
import shortcodes from "emojibase-data/en/shortcodes/iamcal.json" with { type: "json" };

let byName: Map<string, string> | undefined;

/** `1F44D` or `2764-FE0F-200D-1F525` as text; a lone symbol below U+1F000 gets the emoji form. */
function fromHexcode(hexcode: string): string {
  const points = hexcode.split("-").map((h) => parseInt(h, 16));
  if (points.length === 1 && (points[0] as number) < 0x1f000) points.push(0xfe0f);
  return String.fromCodePoint(...points);
}

/** The Unicode text of a standard emoji name (`+1`, `smile`, `tada`), else undefined. */
export function standardEmoji(name: string): string | undefined {
  if (!byName) {
    byName = new Map();
    for (
      const [hexcode, names] of Object.entries(shortcodes as Record<string, string | string[]>)
    ) {
      for (const n of Array.isArray(names) ? names : [names]) byName.set(n, fromHexcode(hexcode));
    }
  }
  return byName.get(name);
}
