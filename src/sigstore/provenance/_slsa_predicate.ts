/**
 * Private: reads the facts the SLSA policy checks out of a verified in-toto statement, for SLSA
 * provenance v0.2 (slsa-github-generator) and v1 (slsa-github-generator and GitHub's
 * `actions/attest-build-provenance`), the way slsa-verifier's `slsaprovenance` packages do. The payload
 * is parsed strictly (duplicate keys refused) and every field is type-checked; a missing or
 * mistyped field is `ATTESTATION_INVALID`, never a default.
 *
 * @module
 */
import { DangerzoneError } from "../../errors.ts";
import { isJsonObject, type JsonObject, parseStrictJsonBytes } from "../../strict_json.ts";

/** SLSA provenance v0.2. */
export const SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2";
/** SLSA provenance v1. */
export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";

/** One statement subject. */
export interface StatementSubject {
  /** Its name (an image name for containers). */
  readonly name: string;
  /** Algorithm to hex digest. */
  readonly digest: Readonly<Record<string, string>>;
}

/** What the policy needs from a provenance statement. Read only from verified bytes. */
export interface ProvenanceFacts {
  /** `predicateType`. */
  readonly predicateType: string;
  /** The statement's subjects. */
  readonly subjects: readonly StatementSubject[];
  /** `builder.id` (v0.2) or `runDetails.builder.id` (v1). */
  readonly builderId: string;
  /** The build type. */
  readonly buildType: string;
  /** The triggering source, `git+https://github.com/OWNER/REPO@REF`. */
  readonly triggerUri: string;
  /** The first material / resolved dependency, `git+https://github.com/OWNER/REPO@REF`. */
  readonly sourceUri: string;
  /** The workflow file that was run (`configSource.entryPoint` or `workflow.path`). */
  readonly workflow: string;
  /** The source commit, when recorded. */
  readonly commit: string | undefined;
  /** Build start time as recorded, if any. */
  readonly buildStartedOn: string | undefined;
  /** Build finish time as recorded, if any. */
  readonly buildFinishedOn: string | undefined;
  /** The source branch (slsa-verifier `GetBranch` rules); throws when it cannot be determined. */
  branch(): string;
  /** The source tag (slsa-verifier `GetTag` rules); throws when it cannot be determined. */
  tag(): string;
}

/** Parses a verified in-toto statement carrying SLSA provenance. */
export function readProvenanceFacts(verifiedPayload: Uint8Array): ProvenanceFacts {
  let statement: unknown;
  try {
    statement = parseStrictJsonBytes(verifiedPayload);
  } catch (err) {
    throw invalid("the in-toto statement is not strict UTF-8 JSON", err);
  }
  const root = obj(statement, "statement");
  const predicateType = str(root["predicateType"], "predicateType");
  const subjects = readSubjects(root["subject"]);
  const predicate = obj(root["predicate"], "predicate");
  switch (predicateType) {
    case SLSA_PROVENANCE_V02:
      return readV02(predicateType, subjects, predicate);
    case SLSA_PROVENANCE_V1:
      return readV1(predicateType, subjects, predicate);
    default:
      throw new DangerzoneError(
        "POLICY_PREDICATE_MISMATCH",
        `the attestation's predicateType '${predicateType.slice(0, 100)}' is not SLSA provenance`,
        { hint: `expected ${SLSA_PROVENANCE_V02} or ${SLSA_PROVENANCE_V1}` },
      );
  }
}

function readSubjects(value: unknown): StatementSubject[] {
  if (!Array.isArray(value)) throw invalid("statement subject is not a list");
  return value.map((s, i) => {
    const subject = obj(s, `subject[${i}]`);
    const digests = obj(subject["digest"], `subject[${i}].digest`);
    const digest: Record<string, string> = {};
    for (const [alg, hex] of Object.entries(digests)) digest[alg] = str(hex, `subject[${i}].digest.${alg}`);
    const name = subject["name"];
    return { name: name === undefined ? "" : str(name, `subject[${i}].name`), digest };
  });
}

function readV02(predicateType: string, subjects: StatementSubject[], p: JsonObject): ProvenanceFacts {
  const builderId = str(obj(p["builder"], "predicate.builder")["id"], "predicate.builder.id");
  const invocation = obj(p["invocation"], "predicate.invocation");
  const configSource = obj(invocation["configSource"], "predicate.invocation.configSource");
  const materials = p["materials"];
  if (!Array.isArray(materials) || materials.length === 0) throw invalid("predicate.materials is empty");
  const material = obj(materials[0], "predicate.materials[0]");
  const digest = configSource["digest"];
  const metadata = p["metadata"] === undefined || p["metadata"] === null
    ? undefined
    : obj(p["metadata"], "predicate.metadata");
  const environment = invocation["environment"];
  return {
    predicateType,
    subjects,
    builderId,
    buildType: str(p["buildType"], "predicate.buildType"),
    triggerUri: str(configSource["uri"], "configSource.uri"),
    sourceUri: str(material["uri"], "materials[0].uri"),
    workflow: str(configSource["entryPoint"], "configSource.entryPoint"),
    commit: digest === undefined
      ? undefined
      : optionalStr(obj(digest, "configSource.digest")["sha1"], "sha1"),
    buildStartedOn: optionalStr(metadata?.["buildStartedOn"], "metadata.buildStartedOn"),
    buildFinishedOn: optionalStr(metadata?.["buildFinishedOn"], "metadata.buildFinishedOn"),
    branch: () => branchFromEnvironment(obj(environment, "invocation.environment"), false),
    tag: () => tagFromEnvironment(obj(environment, "invocation.environment"), false),
  };
}

function readV1(predicateType: string, subjects: StatementSubject[], p: JsonObject): ProvenanceFacts {
  const definition = obj(p["buildDefinition"], "predicate.buildDefinition");
  const runDetails = obj(p["runDetails"], "predicate.runDetails");
  const builderId = str(obj(runDetails["builder"], "runDetails.builder")["id"], "runDetails.builder.id");
  const external = obj(definition["externalParameters"], "buildDefinition.externalParameters");
  const workflow = obj(external["workflow"], "externalParameters.workflow");
  const repository = str(workflow["repository"], "externalParameters.workflow.repository");
  const ref = str(workflow["ref"], "externalParameters.workflow.ref");
  const deps = definition["resolvedDependencies"];
  if (!Array.isArray(deps) || deps.length === 0) {
    throw invalid("buildDefinition.resolvedDependencies is empty");
  }
  const dep = obj(deps[0], "resolvedDependencies[0]");
  const depDigest = dep["digest"];
  const metadata = runDetails["metadata"] === undefined
    ? undefined
    : obj(runDetails["metadata"], "runDetails.metadata");
  return {
    predicateType,
    subjects,
    builderId,
    buildType: str(definition["buildType"], "buildDefinition.buildType"),
    triggerUri: `git+${repository}@${ref}`,
    sourceUri: str(dep["uri"], "resolvedDependencies[0].uri"),
    workflow: str(workflow["path"], "externalParameters.workflow.path"),
    commit: depDigest === undefined
      ? undefined
      : optionalStr(obj(depDigest, "resolvedDependencies[0].digest")["gitCommit"], "gitCommit"),
    buildStartedOn: optionalStr(metadata?.["startedOn"], "runDetails.metadata.startedOn"),
    buildFinishedOn: optionalStr(metadata?.["finishedOn"], "runDetails.metadata.finishedOn"),
    branch: () => {
      if (ref.startsWith("refs/heads/")) return ref.slice("refs/heads/".length);
      throw invalid(`the source ref '${ref.slice(0, 100)}' is not a branch`);
    },
    tag: () => {
      if (ref.startsWith("refs/tags/")) return ref.slice("refs/tags/".length);
      throw invalid(`the source ref '${ref.slice(0, 100)}' is not a tag`);
    },
  };
}

/** slsa-verifier `common.GetBranch` then `BranchFromGitRef`. */
function branchFromEnvironment(env: JsonObject, upper: boolean): string {
  const key = (k: string) => upper ? k.toUpperCase() : k;
  const refType = str(env[key("github_ref_type")], "github_ref_type");
  let ref: string;
  if (refType === "branch") {
    ref = str(env[key("github_ref")], "github_ref");
  } else if (refType === "tag") {
    ref = str(env[key("github_base_ref")], "github_base_ref");
    if (ref === "") {
      const event = str(env[key("github_event_name")], "github_event_name");
      const payload = obj(env[key("github_event_payload")], "github_event_payload");
      if (event === "push") {
        const baseRef = payload["base_ref"];
        ref = typeof baseRef === "string" ? baseRef : "";
      } else if (event === "release") {
        const release = obj(payload["release"], "github_event_payload.release");
        ref = `refs/heads/${str(release["target_commitish"], "release.target_commitish")}`;
      }
    }
  } else {
    throw invalid(`unknown github_ref_type '${refType.slice(0, 40)}'`);
  }
  if (!ref.startsWith("refs/heads/")) {
    throw new DangerzoneError("POLICY_REJECTED", "the provenance records no source branch for this build", {
      hint: "drop --branch, or use --tag for builds triggered by a tag",
    });
  }
  return ref.slice("refs/heads/".length);
}

/** slsa-verifier `common.GetTag` then `TagFromGitRef`. */
function tagFromEnvironment(env: JsonObject, upper: boolean): string {
  const key = (k: string) => upper ? k.toUpperCase() : k;
  const refType = str(env[key("github_ref_type")], "github_ref_type");
  if (refType === "tag") {
    const ref = str(env[key("github_ref")], "github_ref");
    if (ref.startsWith("refs/tags/")) return ref.slice("refs/tags/".length);
  } else if (refType !== "branch") {
    throw invalid(`unknown github_ref_type '${refType.slice(0, 40)}'`);
  }
  throw new DangerzoneError("POLICY_REJECTED", "the provenance records no source tag for this build", {
    hint: "drop --tag, or use --branch for builds triggered on a branch",
  });
}

function obj(value: unknown, what: string): JsonObject {
  if (!isJsonObject(value)) throw invalid(`${what} is not a JSON object`);
  return value;
}

function str(value: unknown, what: string): string {
  if (typeof value !== "string") throw invalid(`${what} is not a string`);
  return value;
}

function optionalStr(value: unknown, what: string): string | undefined {
  return value === undefined || value === null ? undefined : str(value, what);
}

function invalid(message: string, cause?: unknown): DangerzoneError {
  return new DangerzoneError(
    "ATTESTATION_INVALID",
    `SLSA provenance is malformed: ${message}`,
    cause === undefined ? {} : { cause },
  );
}
