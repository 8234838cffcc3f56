/**
 * Private: reads named environment variables one by one. `Deno.env.toObject()` needs access to the
 * whole environment: under a narrow `--allow-env=A,B` it throws, and every variable (credentials,
 * proxies) would be ignored. Each variable here is read only when its permission is granted (a
 * variable outside the allow-list is absent, never a prompt, never a failure).
 *
 * @module
 */

/** The values of `names` that are set and readable; the others are absent. */
export function readEnv(names: readonly string[]): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const name of names) {
    try {
      if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") continue;
      const value = Deno.env.get(name);
      if (value !== undefined) env[name] = value;
    } catch (err) {
      // not readable here (NotCapable, PermissionDenied): treat as unset, like a missing variable
      if (!(err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied)) throw err;
    }
  }
  return env;
}
