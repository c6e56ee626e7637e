// Writes Seam's published OpenAPI document (npm @seamapi/types, pinned in package-lock.json)
// as openapi.json beside this file, for the fake cloud's conformance tests.
// The package ships the document as an ES module with no imports; nothing else of it is run.
import { writeFileSync } from "node:fs";

const here = new URL(".", import.meta.url);
const { default: document } = await import(
  new URL("node_modules/@seamapi/types/lib/seam/connect/openapi.js", here)
);
writeFileSync(new URL("openapi.json", here), JSON.stringify(document));
