/**
 * The keys dangerzone-image ships with, embedded byte-for-byte so the compiled program never reads
 * files relative to its source tree: the Dangerzone publisher key (`freedomofpress-dangerzone.pub`,
 * whose file sha256 names Dangerzone's signature-store folder) and the production Rekor key
 * (`rekor.pub`). The same bytes are in `assets/`; a test checks that all copies agree. Private to
 * `src/sigstore/`.
 *
 * @module
 */

/** `freedomofpress-dangerzone.pub`, exactly (sha256 f8d4fdda2a40d010a1d7d4024e78cecc14d9ab48c89301a901df960a0c47a074). */
export const DANGERZONE_PUBLISHER_KEY_PEM: string =
  "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3CUlnwh825Z5wQAJV6TekEi6bCK2\nYvAg7A+aeerM5hvc4CCCJFBae5AjnsjGHv4V/3xzssck6e51W+b0jU4qVw==\n-----END PUBLIC KEY-----\n";

/** The production Rekor `rekor.pub`, exactly (sha256 dce5ef715502ec9f3cdfd11f8cc384b31a6141023d3e7595e9908a81cb6241bd). */
export const REKOR_PUBLIC_KEY_PEM: string =
  "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwr\nkBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==\n-----END PUBLIC KEY-----\n";
