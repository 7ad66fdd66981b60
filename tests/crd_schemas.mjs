// Custom resources (JSON, one array on stdin) against the published schemas of their kinds: the
// models @kubernetes-models generates from each project's CRDs (the Gateway API's, KEDA's), each
// validated with its JSON schema. One line per resource; exit 1 if any fails. ./run-tests installs
// the packages into .cache/npm.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const packages = {
  "gateway.networking.k8s.io": "gateway-api",
  "keda.sh": "keda",
};
const models = join(dirname(fileURLToPath(import.meta.url)), "..", ".cache", "npm", "node_modules", "@kubernetes-models");
let failed = 0;
for (const resource of JSON.parse(readFileSync(0, "utf8"))) {
  const [group, version] = resource.apiVersion.split("/");
  const module = await import(pathToFileURL(join(models, packages[group], group, version, `${resource.kind}.js`)));
  try {
    new module[resource.kind](resource).validate();
    console.log(`${resource.kind} ${resource.metadata.name}: valid`);
  } catch (error) {
    console.log(`${resource.kind} ${resource.metadata.name}: ${error.message}`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
