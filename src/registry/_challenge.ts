/**
 * Parsing of `WWW-Authenticate` challenges (RFC 7235): `Bearer realm=..,service=..,scope=..`
 * and `Basic realm=..`.
 *
 * @module
 */

/** One parsed challenge. */
export interface Challenge {
  /** Lowercased scheme: `bearer`, `basic`, ... */
  scheme: string;
  /** Auth parameters, keys lowercased. */
  params: Record<string, string>;
}

/** Parses a `WWW-Authenticate` header value into its challenges (possibly several). */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  let current: Challenge | undefined;
  const skipWs = () => {
    while (i < n && (header[i] === " " || header[i] === "\t" || header[i] === ",")) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header.charAt(i))) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipWs();
    const start = i;
    const name = token();
    if (name.length === 0) {
      i = Math.max(i + 1, start + 1);
      continue;
    }
    let j = i;
    while (j < n && header[j] === " ") j++;
    if (header[j] === "=") {
      // auth-param of the current challenge
      i = j + 1;
      while (i < n && header[i] === " ") i++;
      let value = "";
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === "\\" && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const vs = i;
        while (i < n && header[i] !== "," && header[i] !== " ") i++;
        value = header.slice(vs, i);
      }
      if (current !== undefined) current.params[name.toLowerCase()] = value;
    } else {
      current = { scheme: name.toLowerCase(), params: {} };
      out.push(current);
      i = j;
    }
  }
  return out;
}
