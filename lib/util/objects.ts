/** A JSON object (not null, not an array): the shape every record and config file must have. */
export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
