import { defineRuntimeTests } from "./_suite.ts";

defineRuntimeTests("podman");
